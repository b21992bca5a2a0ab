"""The book's linear regression as a thin LightningModule around the functions in `linreg/functions.py`.

    model = LinearRegressionScratch(num_inputs=2, lr=0.03)
    L.Trainer(max_epochs=3).fit(model, datamodule=SyntheticRegressionDataModule())

Optimization is manual (`automatic_optimization = False`): `sgd_step` is the body of the book's loop,
`l = squared_loss(linreg(X, w, b), y); l.sum().backward(); sgd([w, b], lr, batch_size)`, and
`training_step` runs it on each minibatch of a block (steps per execution: one Lightning batch carries
K minibatches, so Lightning's per-batch cost is paid once per K updates; K = 1 is one update a batch).

The update goes through `BookSGD`, a torch Optimizer whose `step` is exactly the book's `sgd` call. It
adds no arithmetic; it exists so that Lightning sees an optimizer step: `trainer.global_step` counts
optimizer steps, and `max_steps`, step-based checkpoints and resume all depend on it.
"""

import math
from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn
from torchmetrics import MeanMetric, MeanSquaredError, R2Score

from linreg.functions import absolute_loss, huber_loss, l2_penalty, linreg, sgd, squared_loss
from linreg.hooks import FastHookName

TRAIN_SET, HELD_OUT = 0, 1  # the order of the DataModule's val_dataloader() list
LOSSES = {"squared": squared_loss, "absolute": absolute_loss, "huber": huber_loss}  # --loss


class BookSGD(torch.optim.Optimizer):
    """The book's `sgd(params, lr, batch_size)` behind torch's Optimizer interface.

    `step(batch_size=n)` runs `sgd(params, lr, n)`: param -= lr * grad / n, then zeroes the grads.
    """

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, {"lr": lr})

    def step(self, closure: Callable[[], float] | None = None, *, batch_size: int) -> float | None:
        # Lightning passes a closure that runs its `on_before_optimizer_step` hooks: call it first.
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            sgd(group["params"], group["lr"], batch_size)
        return loss


class LinearRegressionScratch(FastHookName, L.LightningModule):
    """y_hat = X w + b with w ~ N(0, init_std²) of shape (num_inputs, 1) and b = 0, trained by the book's SGD
    on the per-example `loss`: the book's squared_loss, or absolute_loss, or huber_loss with `huber_delta`,
    plus `weight_decay` · l2_penalty(w) (D2L §3.7; the epoch losses are the data's alone, as the book's).

    The losses logged are in that loss. Logs `train/loss`, the mean minibatch loss over the last
    `log_every_n_steps` steps. After each epoch, from the evaluation loaders: `train/epoch_loss` (the whole
    training set, as the book prints it) and on the held-out set `val/loss`, `val/mse`, `val/r2`.
    `hp_metric` is the held-out loss (the training loss when nothing is held out).
    """

    GRADIENT_SCALE = 1  # the training loss's gradient over squared_loss's, at the same point (concise: 2)

    def __init__(
        self,
        num_inputs: int = 2,
        lr: float = 0.03,
        init_std: float = 0.01,
        loss: str = "squared",
        huber_delta: float = 1.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        # the book's `loss = squared_loss`, or another per-example loss (linreg/functions.py)
        self.loss = partial(huber_loss, delta=huber_delta) if loss == "huber" else LOSSES[loss]
        self.init_parameters(num_inputs, init_std)
        # Epoch metrics accumulate over chunks; torchmetrics syncs them across processes under DDP.
        self.train_epoch_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_mse = MeanSquaredError()
        self.val_r2 = R2Score()
        self.evaluated_at_step = -1  # the global_step of the last epoch-end evaluation
        # The minibatch losses since the last write of train/loss, kept on the device and added up at the
        # write: one detach per update instead of three more tensor ops, and nothing waits for the device.
        self.losses: list[torch.Tensor] = []  # each (batch_size, 1)
        self.train_loss: float | None = None  # the last value written, shown by the progress bar
        self.update_callbacks: list[L.Callback] = []  # those with on_train_update_end, set when training starts
        self.diverged_at_step: int | None = None  # set when the loss turns inf or nan: training stops

    def init_parameters(self, num_inputs: int, init_std: float) -> None:
        """The book's initialization: w ~ N(0, init_std²), b = 0 (the concise model overrides this)."""
        self.w = nn.Parameter(torch.normal(0, init_std, (num_inputs, 1)))  # (num_inputs, 1)
        self.b = nn.Parameter(torch.zeros(1))  # (1,)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return linreg(X, self.w, self.b)

    def example_losses(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each example's loss, (n, 1), for the epoch metrics: the training loss itself, per example."""
        return self.loss(y_hat, y)

    def configure_optimizers(self) -> BookSGD:
        return BookSGD([self.w, self.b], lr=self.hparams.lr)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, list[int]], batch_idx: int) -> None:
        """One Lightning batch is a block of minibatches (steps per execution, see linreg.sampler.Blocks):
        the book's loop body runs on each in turn, so Lightning's per-batch cost is paid once per block."""
        X_block, y_block, lengths = batch  # (sum of lengths, num_inputs), (sum of lengths, 1), K lengths
        optimizer = self.optimizers()  # looked up once a block: Lightning's wrapper of BookSGD
        for X, y in zip(X_block.split(lengths), y_block.split(lengths), strict=True):
            if self.trainer.should_stop or 0 <= self.trainer.max_steps <= self.global_step:
                break  # diverged, or --max-steps reached in the middle of the block: exactly as with K = 1
            self.sgd_step(X, y, optimizer)
            self.after_update()

    def sgd_step(self, X: torch.Tensor, y: torch.Tensor, optimizer: LightningOptimizer) -> None:
        """The body of the book's loop on one minibatch: X (batch_size, num_inputs), y (batch_size, 1)."""
        l = self.loss(linreg(X, self.w, self.b), y)  # (batch_size, 1): the minibatch loss of X and y
        if self.hparams.weight_decay:  # D2L §3.7: + lambd * l2_penalty(w) on each example's loss; b is free
            l = l + self.hparams.weight_decay * l2_penalty(self.w)
        self.manual_backward(l.sum())  # l is not a scalar: sum it, as the book does, then backprop
        # sgd([w, b], lr, len(X)). The book passes the nominal batch_size; dividing by the actual length
        # keeps the short last batch a mean gradient too (see README, "batches that do not divide").
        optimizer.step(batch_size=self.divisor(len(X)))
        self.losses.append(l.detach())

    def on_train_start(self) -> None:
        # Lightning calls its callbacks once per batch, K updates here: those that act per SGD update
        # (trajectories, step checkpoints, the progress bar) implement on_train_update_end instead.
        self.update_callbacks = [c for c in self.trainer.callbacks if hasattr(c, "on_train_update_end")]

    def after_update(self) -> None:
        """After every SGD update, whatever the block size: train/loss and the per-update callbacks."""
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.write_train_loss()
        for callback in self.update_callbacks:
            callback.on_train_update_end(self.trainer, self)

    def divisor(self, batch_length: int) -> int | torch.Tensor:
        """The batch length sgd divides by: len(X) on one device; under DDP, the global batch's length / R.

        DDP's backward averages the R ranks' summed gradients, so dividing by (global length / R) gives
        the mean gradient over the global batch, the same divisor on every rank. When the ranks' parts are
        equal it is len(X), and R devices at batch B are one device at batch R·B.
        """
        world_size = self.trainer.world_size
        if world_size == 1:
            return batch_length
        length = torch.tensor(float(batch_length), device=self.device, dtype=self.w.dtype)
        return self.trainer.strategy.reduce(length, reduce_op="sum") / world_size

    def write_train_loss(self) -> None:
        """Write the mean minibatch loss since the last write as `train/loss`, straight to the loggers.

        Not `self.log`: its bookkeeping costs ~0.4 ms a call, more than the book's whole SGD step at
        batch 10 even once every 10 steps. The price: `train/loss` is not in `trainer.callback_metrics`
        (monitor `train/epoch_loss` or `val/loss` instead). The x-axis is the number of updates done
        before the last of these minibatches, Lightning's convention for step metrics.
        """
        # One host sync per write, not per step, for the loss and for a sum of the parameters: inf or nan
        # there means divergence. The parameters, not this rank's loss: they are the same on every rank,
        # so under DDP every rank decides to stop at the same step (one stopping alone would hang the job).
        losses = torch.cat(self.losses)  # (examples since the last write, 1)
        self.losses.clear()
        loss, parameters = torch.stack([losses.mean(), self.w.sum() + self.b.sum()]).tolist()
        self.train_loss = loss
        for logger in self.loggers:
            logger.log_metrics({"train/loss": self.train_loss}, step=self.global_step - 1)
        self.stop_if_diverged(parameters)

    def stop_if_diverged(self, value: float) -> None:
        """A value gone inf or nan (too large a learning rate) stops training; what was logged stays."""
        if not math.isfinite(value) and self.diverged_at_step is None:
            self.diverged_at_step = self.global_step
            self.trainer.should_stop = True

    def on_validation_start(self) -> None:
        # module.double() (precision "64-true") leaves torchmetrics' states in float32: match the parameters.
        for metric in (self.train_epoch_loss, self.val_loss, self.val_mse, self.val_r2):
            metric.set_dtype(self.w.dtype)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0):
        X, y = batch  # an in-order chunk: (chunk, num_inputs), (chunk, 1)
        y_hat = self(X)  # (chunk, 1)
        if not self.trainer.datamodule.evaluates_training_set:  # streaming: a held-out stream alone
            dataloader_idx = HELD_OUT
        if dataloader_idx == TRAIN_SET:
            self.train_epoch_loss.update(self.example_losses(y_hat, y))
        else:
            self.val_loss.update(self.example_losses(y_hat, y))
            self.val_mse.update(y_hat.reshape(-1), y.reshape(-1))
            self.val_r2.update(y_hat.reshape(-1), y.reshape(-1))

    def on_validation_epoch_end(self) -> None:
        # Which metrics exist is decided from the data, the same on every rank, not from this rank's updates:
        # under DDP a rank with no held-out example must still join every metric's collective.
        datamodule = self.trainer.datamodule
        held_out = datamodule.num_held_out
        metrics = {"train/epoch_loss": self.train_epoch_loss} if datamodule.evaluates_training_set else {}
        if held_out >= 1:
            metrics |= {"val/loss": self.val_loss, "val/mse": self.val_mse}
        if held_out >= 2:  # R² compares with the held-out labels' variance: undefined for one example
            metrics["val/r2"] = self.val_r2
        values = {name: metric.compute() for name, metric in metrics.items()}
        for metric in metrics.values():
            metric.reset()
        loss = values.get("train/epoch_loss", values.get("val/loss"))
        self.stop_if_diverged(float(loss))  # combined across ranks: the same on each
        values["hp_metric"] = values.get("val/loss", loss)
        # Lightning uses a logged "step" as the x-axis: put epoch metrics at the number of SGD updates
        # they were measured after, the same axis as the params/* trajectories.
        values["step"] = float(self.global_step)
        self.log_dict(values, sync_dist=True)  # already combined across ranks: this only keeps them equal
        self.evaluated_at_step = self.global_step

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        X = batch[0] if isinstance(batch, list | tuple) else batch
        return self(X)
