"""D2L §3.5, the concise implementation, in the same Trainer, DataModule, logging and report as the scratch one.

    model = LinearRegressionConcise(num_inputs=2, lr=0.015)    # linreg-train --implementation concise --lr 0.015

The book's pieces, as it writes them: `net = nn.Sequential(nn.Linear(2, 1))` initialized with
`net[0].weight.data.normal_(0, 0.01)` and `net[0].bias.data.fill_(0)`, `loss = nn.MSELoss()`,
`trainer = torch.optim.SGD(net.parameters(), lr=0.03)`, and the loop body
`l = loss(net(X), y); trainer.zero_grad(); l.backward(); trainer.step()`.

The same algorithm as the scratch model but for one factor: `nn.MSELoss` is the mean of (y_hat − y)²,
without squared_loss's ½, so its gradient is twice as large, and at lr η the concise model takes the steps
the scratch model takes at 2η (§3.5 exercise 1; tests/test_concise.py runs both). Its losses, logged and
printed, are MSEs: twice the scratch model's.

The same seed gives the same initial w and b: nn.Linear is made with `skip_init`, because its own
initialization would draw from the RNG first, and w is then drawn exactly as the scratch model draws it.
Steps per execution apply as on the scratch path (linreg/stack.py): only the loop body, `sgd_step`, differs.
`weight_decay` λ is torch.optim.SGD's, on the weight only, as §3.7's concise code puts it, at 2λ: the
scratch model's penalty λ/2·‖w‖² with the same factor 2 as the rest of the loss.
"""

import torch
from torch import nn
from torch.nn.utils import skip_init

from linreg.model import LinearRegressionScratch


class LinearRegressionConcise(LinearRegressionScratch):
    """nn.Linear, nn.MSELoss and torch.optim.SGD; `w` and `b` are views of the layer's weight and bias."""

    GRADIENT_SCALE = 2  # MSELoss = mean (y_hat - y)², squared_loss = (y_hat - y)² / 2

    def __init__(self, num_inputs: int = 2, lr: float = 0.03, init_std: float = 0.01, loss: str = "squared", **kw):
        if loss != "squared":
            raise ValueError(f"the concise implementation trains on nn.MSELoss: loss must be squared, got {loss!r}")
        super().__init__(num_inputs, lr, init_std, loss, **kw)
        self.hparams.implementation = "concise"  # in every checkpoint: linreg.prediction rebuilds this class
        self.loss = nn.MSELoss()

    def init_parameters(self, num_inputs: int, init_std: float, bias: bool = True) -> None:
        self.net = nn.Sequential(skip_init(nn.Linear, num_inputs, 1, bias=bias))
        with torch.no_grad():  # the book's weight.data.normal_(0, 0.01) and bias.data.fill_(0)
            self.net[0].weight.copy_(torch.normal(0, init_std, (num_inputs, 1)).T)  # the scratch model's draw
            if bias:
                self.net[0].bias.zero_()
        if not bias:  # nn.Linear(..., bias=False) has none: b reads as a constant 0, as the scratch model's
            self.register_buffer("zero_bias", torch.zeros(1))

    @property
    def w(self) -> torch.Tensor:
        return self.net[0].weight.T  # (num_inputs, 1), as the rest of the project reads w

    @property
    def b(self) -> torch.Tensor:
        bias = self.net[0].bias
        return bias if bias is not None else self.zero_bias  # (1,)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)

    def configure_optimizers(self):
        # weight decay on the weight only, as §3.7's concise code does. torch's weight_decay adds wd·w to the
        # gradient of the MSE, twice the scratch loss: 2λ here is the scratch model's penalty λ/2·‖w‖², doubled
        # with the rest of the loss, so that concise at lr η still takes the steps of scratch at 2η.
        decay = 2 * self.hparams.get("weight_decay", 0.0)
        groups = [{"params": [self.net[0].weight], "weight_decay": decay}]
        if self.net[0].bias is not None:
            groups.append({"params": [self.net[0].bias]})
        return self.with_lr_schedule(torch.optim.SGD(groups, lr=self.hparams.lr))

    def sgd_step(self, X: torch.Tensor, y: torch.Tensor, optimizer) -> torch.Tensor:
        """The body of the book's concise loop on X (n, num_inputs), y (n, 1); returns the loss, (n, 1)."""
        l = self.loss(self.net(X), y)  # a scalar: nn.MSELoss averages over the minibatch
        optimizer.zero_grad()
        self.manual_backward(l)
        optimizer.step()
        return l.detach().expand(len(X), 1)  # per example, as the scratch model's: train/loss's mean is the same

    def example_losses(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(y_hat, y.reshape(y_hat.shape), reduction="none")  # (n, 1): MSELoss unreduced
