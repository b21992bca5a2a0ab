"""The book's linear regression as a LightningModule: the functions of `linreg/functions.py` in a Trainer.

    model = LinearRegressionScratch(num_inputs=2, lr=0.03)
    L.Trainer(max_epochs=3).fit(model, DataLoader(TensorDataset(X, y), batch_size=10, shuffle=True))
    L.Trainer(max_epochs=3).fit(model, datamodule=SyntheticRegressionDataModule())   # the book's data

Optimization is manual (`automatic_optimization = False`): `training_step` is the body of the book's loop,
`l = squared_loss(linreg(X, w, b), y); l.sum().backward(); sgd([w, b], lr, batch_size)`, on any (X, y)
minibatch. The update goes through `BookSGD`, a torch Optimizer whose `step` is the book's `sgd` call and
nothing else: Lightning counts optimizer steps in `trainer.global_step`, and `max_steps`, step-based
checkpoints and resuming all depend on it.

Evaluation: every validation loader is a held-out set, logged as `val/loss`, `val/mse`, `val/r2`; a
DataModule that returns its loaders as a dict `{"train": ..., "val": ...}` also gets the book's epoch
loss over the whole training set, `train/epoch_loss`.

This file is the plain core: Lightning's public API only. The command line trains a subclass with speed
layers on top (linreg/steps_per_execution.py, linreg/fast_hooks.py), proven to take the same steps.
"""

from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric, MeanSquaredError, R2Score, SumMetric

from linreg.functions import absolute_loss, huber_loss, l2_penalty, linreg, sgd, squared_loss
from linreg.lr_schedules import SCHEDULES, lr_schedule

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


class LinearRegressionScratch(L.LightningModule):
    """y_hat = X w + b with w ~ N(0, init_std²) of shape (num_inputs, 1) and b = 0, trained by the book's SGD
    on the per-example `loss`: the book's squared_loss, or absolute_loss, or huber_loss with `huber_delta`,
    plus `weight_decay` · l2_penalty(w) (D2L §3.7; the epoch losses are the data's alone, as the book's).
    `bias=False`: y_hat = X w, b held at exactly 0. `lr_schedule` (and its lr_step_size, lr_gamma, power_t):
    the learning rate of each update (linreg/lr_schedules.py); "constant" is the book's.
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
        bias: bool = True,
        lr_schedule: str = "constant",
        lr_step_size: int | None = None,
        lr_gamma: float = 0.5,
        power_t: float = 0.25,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {lr_schedule!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        # the book's `loss = squared_loss`, or another per-example loss (linreg/functions.py)
        self.loss = partial(huber_loss, delta=huber_delta) if loss == "huber" else LOSSES[loss]
        self.init_parameters(num_inputs, init_std, bias)
        # Epoch metrics accumulate over chunks; torchmetrics combines them across processes under DDP.
        self.train_epoch_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.val_mse = MeanSquaredError()
        self.val_r2 = R2Score()
        self.val_examples = SumMetric()  # R² needs two held-out examples: counted over every process

    def init_parameters(self, num_inputs: int, init_std: float, bias: bool = True) -> None:
        """The book's initialization: w ~ N(0, init_std²), b = 0 (the concise model overrides this). Without
        a bias (scikit-learn's fit_intercept=False), b is a constant 0, a buffer that no update touches."""
        self.w = nn.Parameter(torch.normal(0, init_std, (num_inputs, 1)))  # (num_inputs, 1)
        if bias:
            self.b = nn.Parameter(torch.zeros(1))  # (1,)
        else:
            self.register_buffer("b", torch.zeros(1))  # (1,): in the checkpoint, moved with the module, never trained

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return linreg(X, self.w, self.b)

    def example_losses(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each example's loss, (n, 1), for the epoch metrics: the training loss itself, per example."""
        return self.loss(y_hat, y)

    def configure_optimizers(self):
        optimizer = BookSGD([self.w, self.b] if self.hparams.bias else [self.w], lr=self.hparams.lr)
        return self.with_lr_schedule(optimizer)

    def with_lr_schedule(self, optimizer: torch.optim.Optimizer):
        """The optimizer, with the run's learning-rate schedule if it has one (stepped by `step_lr`)."""
        hp = self.hparams
        if hp.lr_schedule == "constant":  # the book's: no scheduler at all
            return optimizer
        per_epoch, total = self.planned_updates()
        schedule = lr_schedule(optimizer, hp.lr_schedule, total, per_epoch, hp.lr_step_size, hp.lr_gamma, hp.power_t)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def planned_updates(self) -> tuple[int, int]:
        """(SGD updates an epoch, updates in the whole run): the DataModule's sampler says the first, else
        Lightning's count of training batches; max_epochs and max_steps, the second."""
        trainer = self.trainer
        sampler = getattr(trainer.datamodule, "train_sampler", None)
        per_epoch = len(sampler()) if sampler is not None else trainer.num_training_batches
        limits = [per_epoch * trainer.max_epochs] if (trainer.max_epochs or -1) >= 0 else []
        limits += [trainer.max_steps] if trainer.max_steps >= 0 else []
        return per_epoch, min(limits, default=per_epoch)

    # -- training: the book's loop body ---------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        X, y = batch  # a minibatch: (batch_size, num_inputs), (batch_size, 1)
        optimizer = self.optimizers()
        l = self.sgd_step(X, y, optimizer)
        self.log("train/loss", l.mean(), prog_bar=True)
        self.log("train/lr", self.step_lr(optimizer, self.lr_schedulers()))

    def step_lr(self, optimizer, schedule) -> float:
        """After an update: the rate it was taken at; the schedule (None: constant) moves on to the next's."""
        lr = optimizer.param_groups[0]["lr"]
        if schedule is not None:
            schedule.step()
        return lr

    def sgd_step(self, X: torch.Tensor, y: torch.Tensor, optimizer) -> torch.Tensor:
        """One update of the book's loop on X (n, num_inputs), y (n, 1); returns the minibatch loss (n, 1)."""
        l = self.loss(linreg(X, self.w, self.b), y)  # (n, 1): the minibatch loss of X and y
        if self.hparams.weight_decay:  # D2L §3.7: + lambd * l2_penalty(w) on each example's loss; b is free
            l = l + self.hparams.weight_decay * l2_penalty(self.w)
        self.manual_backward(l.sum())  # l is not a scalar: sum it, as the book does, then backprop
        optimizer.step(batch_size=self.sgd_batch_size(len(X)))  # sgd([w, b], lr, batch_size)
        return l.detach()

    def sgd_batch_size(self, length: int) -> int | torch.Tensor:
        """What sgd divides the summed gradient by: the minibatch's own length, so that a short last batch
        takes a mean-gradient step too (the book passes its nominal batch_size; see docs/design.md).

        Under DDP, the global batch's length over the number of processes R: DDP averages the R summed
        gradients, so this is the mean over the global batch, the same on every process even when the
        processes' parts differ in length. With equal parts it is `length`.
        """
        world_size = self.trainer.world_size
        if world_size == 1:
            return length
        total = torch.tensor(float(length), device=self.device, dtype=self.w.dtype)
        return self.trainer.strategy.reduce(total, reduce_op="sum") / world_size

    # -- evaluation after each epoch -----------------------------------------------------------------------
    def evaluated_sets(self) -> list[str]:
        """The name of each validation loader: the keys of a dict of loaders, else "val" for each."""
        loaders = self.trainer.val_dataloaders
        if isinstance(loaders, dict):
            return list(loaders)
        return ["val"] * (len(loaders) if isinstance(loaders, list | tuple) else 1)

    def epoch_metrics(self) -> tuple:
        return self.train_epoch_loss, self.val_loss, self.val_mse, self.val_r2, self.val_examples

    def on_validation_start(self) -> None:
        # module.double() (precision "64-true") leaves torchmetrics' states in float32: match the parameters.
        for metric in self.epoch_metrics():
            metric.set_dtype(self.w.dtype)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0):
        X, y = batch  # an in-order chunk: (chunk, num_inputs), (chunk, 1)
        y_hat = self(X)  # (chunk, 1)
        if self.evaluated_sets()[dataloader_idx] == "train":
            self.train_epoch_loss.update(self.example_losses(y_hat, y))  # the book's "loss on the whole training set"
        else:
            self.val_loss.update(self.example_losses(y_hat, y))
            self.val_mse.update(y_hat.reshape(-1), y.reshape(-1))
            self.val_r2.update(y_hat.reshape(-1), y.reshape(-1))
            self.val_examples.update(len(y))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.evaluation(), sync_dist=True)  # combined across processes already: kept equal

    def evaluation(self) -> dict[str, torch.Tensor]:
        """The epoch's metrics, each combined across processes, then reset for the next evaluation."""
        sets = self.evaluated_sets()  # the same on every process: each joins every metric's collective
        values = {}
        if "train" in sets:
            values["train/epoch_loss"] = self.train_epoch_loss.compute()
        if "val" in sets:
            values["val/loss"], values["val/mse"] = self.val_loss.compute(), self.val_mse.compute()
            if self.val_examples.compute() >= 2:  # R² compares with the labels' variance: undefined for one
                values["val/r2"] = self.val_r2.compute()
        for metric in self.epoch_metrics():
            metric.reset()
        return values

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        X = batch[0] if isinstance(batch, list | tuple) else batch
        return self(X)
