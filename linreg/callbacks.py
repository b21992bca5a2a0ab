"""Lightning callbacks that report a run the way the book does, and log the parameters' trajectories.

- `BookPrinter`: after every epoch prints `epoch 1, loss 0.036131, val loss 0.036610`, like the book's loop.
- `ClosedFormReference`: solves the book's closed form on the training set when fit starts, and logs
  `reference/closed_form_loss` and `train/excess_loss` (SGD's loss above the optimum) after every epoch.
- `ParameterLogger`: writes `params/w_0`, `params/w_1`, ..., `params/b` to the loggers every
  `log_every_n_steps`, and when the data has a known truth, `params/w_error` (‖w - w_true‖) and
  `params/b_error` (|b - b_true|).
Both read what they need from the trainer, the module and the datamodule; neither changes training.
"""

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from linreg.closed_form import ClosedForm, closed_form, excess_loss


def echo(trainer: L.Trainer, line: str) -> None:
    """Print a line without breaking the progress bar (tqdm needs its own `write`)."""
    bar = trainer.progress_bar_callback
    (bar.print if bar is not None and bar.is_enabled else print)(line)


def parameter_errors(module: L.LightningModule, datamodule) -> tuple[torch.Tensor, float] | None:
    """(true_w - w, true_b - b), the book's "errors in estimating w and b", or None without a truth."""
    true_w = getattr(datamodule, "true_w", None)
    if true_w is None:
        return None
    w = module.w.detach().reshape(-1).cpu().double()  # (num_inputs,)
    return true_w.double() - w, datamodule.true_b - module.b.item()


class BookPrinter(L.Callback):
    """Prints the whole-set training loss (and the held-out loss) after each epoch, as the book does."""

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        if "train/epoch_loss" not in metrics:  # evaluation skipped this epoch (check_val_every_n_epoch)
            return
        line = f"epoch {trainer.current_epoch + 1}, loss {float(metrics['train/epoch_loss']):f}"
        if "val/loss" in metrics:
            line += f", val loss {float(metrics['val/loss']):f}"
        echo(trainer, line)


class ClosedFormReference(L.Callback):
    """The optimum SGD is heading for: β = (XᵀX)⁻¹Xᵀy on the training set, and SGD's distance from it."""

    def __init__(self) -> None:
        self.solution: ClosedForm | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        X, y = trainer.datamodule.train_set.tensors  # (n, num_inputs), (n, 1)
        self.solution = closed_form(X, y)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.solution is None or trainer.sanity_checking:
            return
        pl_module.log("reference/closed_form_loss", self.solution.loss)
        pl_module.log("train/excess_loss", excess_loss(self.solution, pl_module.w, pl_module.b))


class ParameterLogger(L.Callback):
    """Logs w, b and their distance to the truth, every `trainer.log_every_n_steps` SGD steps."""

    def __init__(self) -> None:
        self.last_step: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module)  # the initial point of the trajectory, at step 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if trainer.global_step % max(trainer.log_every_n_steps, 1) == 0:
            self._log(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module)  # the end point, whatever the cadence

    @rank_zero_only
    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.loggers or trainer.global_step == self.last_step:
            return
        self.last_step = trainer.global_step
        w = pl_module.w.detach().reshape(-1).cpu().tolist()  # one host sync for the whole vector
        metrics = {f"params/w_{i}": v for i, v in enumerate(w)}
        metrics["params/b"] = pl_module.b.item()
        errors = parameter_errors(pl_module, trainer.datamodule)
        if errors is not None:
            metrics["params/w_error"] = float(errors[0].norm())
            metrics["params/b_error"] = abs(errors[1])
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
