"""Lightning callbacks: the book's report of a run (the progress bar: linreg/progress_bar.py; step checkpoints:
linreg/fault_tolerance.py).

- `BookReport`: everything the book and its text report about a run, with nothing changed in training:
  - after every epoch, the book's line `epoch 1, loss 0.036131, val loss 0.036610`;
  - the closed form β = (XᵀX)⁻¹Xᵀy of the training set, solved when fit starts (beside training when it
    is long), and after every epoch `reference/closed_form_loss` and `train/excess_loss` (SGD's loss above it);
  - the parameters' trajectories `params/w_0`, `params/w_1`, ..., `params/b` and, with a known truth,
    `params/w_error` (‖w - w_true‖) and `params/b_error` (|b - b_true|); at the end of fit, a figure of
    them drawn from the run's own event file (`params/trajectories`, the IMAGES tab).

Lightning calls callbacks once per batch, and a batch here is a block of K updates (steps per execution):
what must happen per update is in `on_train_update_end` (linreg/steps_per_execution.py).

One callback rather than three on purpose: Lightning calls every hook of every callback at every batch,
a cost of the same order as the book's whole update at batch 10 (docs/performance.md).
"""

import math
from concurrent.futures import Future, ThreadPoolExecutor

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from linreg.block_loading import BlockSampler
from linreg.closed_form import ClosedForm, closed_form, excess_loss, solve_us, worth_solving
from linreg.collinearity import SINGULAR, collinearity_line
from linreg.steps_per_execution import UpdateCallback

SCALARS_PER_WRITE = 16  # params/* written per log_every_n_steps, on average: each scalar written costs time
BACKGROUND_US = 50_000  # a closed form expected to take longer (linreg.closed_form.solve_us) is solved beside training


def echo(trainer: L.Trainer, line: str) -> None:
    """Print a line without breaking the progress bar (tqdm needs its own `write`)."""
    bar = trainer.progress_bar_callback
    (bar.print if bar is not None and bar.is_enabled else print)(line)


def losses_line(metrics: dict) -> str:
    """ "loss 0.036131, val loss 0.036610" from the logged metrics, as the book prints its loss."""
    labels = {"train/epoch_loss": "loss", "val/loss": "val loss"}
    return ", ".join(f"{label} {float(metrics[tag]):f}" for tag, label in labels.items() if tag in metrics)


def conditioning(module: L.LightningModule, solution: ClosedForm, batch_size: int) -> tuple[str, float | None]:
    """Why SGD is fast or slow on this data, before it runs: the curvature's condition number and the largest
    learning rate that does not diverge at this batch size, as a line and the rate (None: no bound).

    Full-batch gradient descent diverges above 2/λ_max of X̃ᵀX̃/n. A minibatch of B examples has a
    curvature of its own, whose trace is about B/n of the full one's: with more features than the batch
    has examples its B nonzero eigenvalues are each about trace/B, larger than λ_max, and the bound is
    2/(trace/B). (The module's loss scales it: the concise model's MSELoss has twice squared_loss's
    gradient, which halves it; the absolute loss has no curvature, and no such bound.)
    """
    kappa, lr = solution.condition_number, module.hparams.lr
    shown = f"{kappa:.3g}" if kappa < math.inf else f"above {1 / SINGULAR:.0e} (collinear columns)"
    if module.hparams.get("loss", "squared") == "absolute":
        return f"conditioning: XᵀX/n has condition number {shown} (no lr bound for --loss absolute)", None
    scale = module.GRADIENT_SCALE  # huber: the squared loss's curvature near the optimum
    full, minibatch = float(solution.eigenvalues[-1]), float(solution.eigenvalues.sum()) / batch_size
    max_lr = 2 / max(full, minibatch) / scale
    if minibatch > full:  # the minibatch's curvature binds: say so, and that it is an estimate
        line = f"conditioning: XᵀX/n has condition number {shown}; at batch {batch_size}, lr above ~{max_lr:.3g}"
        line += f" diverges (a minibatch curves more than the full batch, whose bound is {2 / full / scale:.3g})"
    else:
        line = f"conditioning: XᵀX/n has condition number {shown}, so lr above {max_lr:.3g} diverges"
    if 100 < kappa < math.inf:  # the flattest direction shrinks by a factor (1 - lr·λ_min) per step: name the cost
        steps = 1 / (scale * lr * float(solution.eigenvalues[0]))
        line += f"; at lr {lr:g} the flattest direction needs ~{steps:.3g} steps per e-fold"
    return line, max_lr


def column_names(datamodule, num_inputs: int) -> list[str]:
    """X̃'s columns as a user knows them: the file's feature names (or w_0, w_1, ...), then the intercept."""
    names = getattr(datamodule, "feature_names", None) or [f"w_{i}" for i in range(num_inputs)]
    return [*names, "intercept"]


def parameter_errors(module: L.LightningModule, datamodule) -> tuple[torch.Tensor, float] | None:
    """(true_w - w, true_b - b), the book's "errors in estimating w and b", or None without a truth."""
    true_w = getattr(datamodule, "true_w", None)
    if true_w is None:
        return None
    w = module.w.detach().reshape(-1).cpu().double()  # (num_inputs,)
    return true_w.double() - w, datamodule.true_b - module.b.item()


class BookReport(UpdateCallback):
    """The book's epoch lines, the closed-form reference, and the parameters' trajectories.

    `params/w_error` and `params/b_error` are written every `log_every_n_steps` SGD steps; the
    coordinates `params/w_i`, `params/b` as often for up to 16 parameters, and k times less often for
    16k of them, so that writing them costs the same per step whatever the number of features.
    Both also at step 0 and at the end of training.
    """

    def __init__(self, closed_form: str = "always") -> None:
        if closed_form not in ("auto", "always", "never"):
            raise ValueError(f"closed_form must be auto, always or never, got {closed_form!r}")
        self.policy = closed_form  # auto: solve it only where it costs less than the training (worth_solving)
        self.solution: ClosedForm | None = None
        self.solving: Future | None = None  # a closed form being solved in the background (see on_fit_start)
        self.solver: ThreadPoolExecutor | None = None
        self.coordinates_step: int | None = None  # the last steps written, so that none is written twice
        self.errors_step: int | None = None

    # -- the closed form: solved once, compared after every epoch ------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if self.policy == "never":
            return
        if hasattr(datamodule, "closed_form_solution"):  # streamed file data: solved from its pass's exact sums
            self.solution = datamodule.closed_form_solution(pl_module.hparams.get("weight_decay", 0.0))
            if trainer.is_global_zero:
                print(self.described(trainer, pl_module))
            return
        if getattr(datamodule, "train_set", None) is None:  # streamed synthetic data: nothing to solve on
            return
        X, y = datamodule.closed_form_data()  # (n, num_inputs), (n, 1)
        sampler, epochs = datamodule.train_sampler(), trainer.max_epochs
        if trainer.max_steps > 0:  # --max-steps may end training sooner: the epochs it allows
            epochs = min(epochs, trainer.max_steps / len(sampler))
        if self.policy == "auto" and not worth_solving(X.shape[1], epochs, sampler.batch_size):
            if trainer.is_global_zero:
                plural = "" if epochs == 1 else "s"
                print(
                    f"closed form skipped: with {X.shape[1]} features it costs more than {epochs:g} epoch{plural} "
                    f"of training at batch {sampler.batch_size} (--closed-form always solves it anyway)"
                )
            return
        # the same on every rank (each holds the whole training set); ridge regression under weight decay
        weight_decay = pl_module.hparams.get("weight_decay", 0.0)
        bias = pl_module.hparams.get("bias", True)  # a model without b is compared with least squares without one
        center, scale = datamodule.standardization() or (None, None)  # the model's coordinates
        options = dict(weight_decay=weight_decay, bias=bias, center=center, scale=scale)
        if solve_us(X.shape[1], len(X)) < BACKGROUND_US:  # quick: solved before training starts
            self.solution = closed_form(X, y, **options)
            if trainer.is_global_zero:
                print(self.described(trainer, pl_module))
            return
        # Long: solved on a second thread while training starts (its products release Python), and waited
        # for at the first evaluation, which reports against it. At 1M x 100 that hides most of its ~1 s.
        self.solver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linreg-closed-form")
        self.solving = self.solver.submit(closed_form, X, y, **options)

    def described(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        """The conditioning line, and the collinearity line where columns depend on others."""
        datamodule = trainer.datamodule
        lines = [conditioning(pl_module, self.solution, datamodule.examples_per_batch())[0]]
        lines.append(collinearity_line(self.solution, column_names(datamodule, pl_module.w.numel())))
        return "\n".join(line for line in lines if line)

    def solved(self, trainer: L.Trainer, pl_module: L.LightningModule, wait: bool = True) -> ClosedForm | None:
        """The closed form once solved in the background (waiting for it if `wait`), its line printed then."""
        if self.solving is not None and (wait or self.solving.done()):
            self.solution, self.solving = self.solving.result(), None
            self.solver.shutdown()
            if trainer.is_global_zero:
                echo(trainer, self.described(trainer, pl_module))
        return self.solution

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self.solving is not None:
            self.solved(trainer, pl_module, wait=False)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.solved(trainer, pl_module) is None:
            return
        pl_module.log("reference/closed_form_loss", self.solution.loss, sync_dist=True)
        pl_module.log("train/excess_loss", excess_loss(self.solution, pl_module.w, pl_module.b), sync_dist=True)

    # -- the book's line after each epoch ------------------------------------------------------------------
    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        line = losses_line(trainer.callback_metrics)
        if not line:  # empty when the evaluation was skipped this epoch (check_val_every_n_epoch)
            return
        blocks = getattr(trainer.train_dataloader, "sampler", None)
        if isinstance(blocks, BlockSampler) and blocks.position()[0] < blocks.steps:
            # --max-steps stopped the epoch's last block early: Lightning ends the epoch, the book's does not
            echo(trainer, f"step {trainer.global_step}, {line}")
        else:
            echo(trainer, f"epoch {trainer.current_epoch + 1}, {line}")

    # -- the parameters' trajectories ----------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_parameters(trainer, pl_module, coordinates=True)  # the starting point, at step 0

    def on_train_update_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        every = max(trainer.log_every_n_steps, 1)
        if trainer.global_step % every == 0:
            every_coordinates = every * math.ceil((pl_module.w.numel() + 1) / SCALARS_PER_WRITE)
            self.log_parameters(trainer, pl_module, coordinates=trainer.global_step % every_coordinates == 0)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.solved(trainer, pl_module)  # the summary and the figure compare against it
        self.log_parameters(trainer, pl_module, coordinates=True)  # the end point, whatever the cadence

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The trajectories as a figure in TensorBoard, drawn from what this run logged."""
        tensorboard = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tensorboard is None or pl_module.diverged_at_step is not None:
            return
        from linreg.figures import read_scalars, trajectory_figure  # matplotlib: ~0.3 s to import, needed here only

        tensorboard.experiment.flush()  # the event file must hold everything before it is read back
        scalars = read_scalars(tensorboard.log_dir)
        if "params/b" not in scalars:  # this fit logged no trajectory (it had nothing left to train)
            return
        true_w = getattr(trainer.datamodule, "true_w", None)
        solution = self.solution
        figure = trajectory_figure(
            scalars,
            true_w=None if true_w is None else true_w.tolist(),
            true_b=getattr(trainer.datamodule, "true_b", None),
            closed_w=None if solution is None else solution.w.reshape(-1).tolist(),
            closed_b=None if solution is None else solution.b.item(),
        )
        tensorboard.experiment.add_figure("params/trajectories", figure, trainer.global_step)

    @rank_zero_only
    def log_parameters(self, trainer: L.Trainer, pl_module: L.LightningModule, coordinates: bool) -> None:
        if not trainer.loggers:
            return
        step = trainer.global_step
        metrics = {}
        if coordinates and step != self.coordinates_step:
            self.coordinates_step = step
            w = pl_module.w.detach().reshape(-1).cpu().tolist()  # one host sync for the whole vector
            metrics = {f"params/w_{i}": v for i, v in enumerate(w)} | {"params/b": pl_module.b.item()}
        errors = parameter_errors(pl_module, trainer.datamodule) if step != self.errors_step else None
        if errors is not None:
            self.errors_step = step
            metrics |= {"params/w_error": float(errors[0].norm()), "params/b_error": abs(errors[1])}
        if not metrics:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
