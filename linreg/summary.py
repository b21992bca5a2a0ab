"""`summary.json`: the machine-readable result of a run, written into its run folder at the end.

    {"status": "ok" | "diverged at step N", "w": [...] | null, "b": ... | null, "feature_names": [...] | null,
     "true_w": [...] | null, "true_b": ... | null, "train_loss": ...,
     "val_loss": ... | null, "epochs": 3, "global_step": 300, "fit_seconds": ..., "train_seconds": ...,
     "device": "cpu", "run_dir": "lightning_logs/version_0", "hparams": {...every CLI flag...},
     "closed_form": {"w": [...], "b": ..., "train_loss": ..., "method": ..., "digits": ...,
                     "excess_loss_sound": true} | null, "excess_loss": ... | null,
     "condition_number": ... | null, "max_stable_lr": ... | null, "rank": ... | null,
     "collinear_columns": [...] | null,
     "checkpoint": "<run_dir>/checkpoints/last.ckpt",   # (status "interrupted at step N": last-step.ckpt)
     "best_checkpoint": "<run_dir>/checkpoints/best.ckpt" | null}   # --early-stopping's best val/loss

w, b and the closed form are in the units of the user's data (a file's features are standardized for
training; see linreg/file_data.py). `excess_loss` is SGD's training loss above the closed form's, computed
without cancellation (`linreg.closed_form.excess_loss`); null without a closed form (streamed data) or
after divergence. `condition_number` and `max_stable_lr` (2/λ_max) describe the training loss's curvature
X̃ᵀX̃/n, from the closed form's solve (null without one). The file is strict JSON: any number that is not
finite is null (a condition number of collinear or too few rows, for one; see docs/closed-form.md).
Later features add keys; these stay.
"""

import json
import math
from pathlib import Path
from typing import Any

import lightning as L

from linreg.book_report import column_names
from linreg.closed_form import ClosedForm, excess_loss


def run_summary(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule,
    run_dir: str | Path,
    fit_seconds: float,
    hparams: dict[str, Any],
    solution: ClosedForm | None = None,
    train_seconds: float | None = None,
) -> dict[str, Any]:
    metrics = trainer.callback_metrics
    true_w = getattr(datamodule, "true_w", None)
    diverged = model.diverged_at_step is not None

    def metric(name: str) -> float | None:
        return float(metrics[name]) if name in metrics and not diverged else None

    w, b = datamodule.to_data_units(model.w, model.b)  # in the units of the user's data
    return {
        "status": f"diverged at step {model.diverged_at_step}" if diverged else "ok",
        "w": None if diverged else w.tolist(),  # never NaNs as if the run were fine
        "b": None if diverged else b.item(),
        "feature_names": datamodule.feature_names,
        "true_w": None if true_w is None else true_w.tolist(),
        "true_b": None if true_w is None else datamodule.true_b,
        "train_loss": metric("train/epoch_loss"),
        "val_loss": metric("val/loss"),
        # Completed epochs, fractional when --max-steps stops mid-epoch (1.5 = one and a half epochs).
        "epochs": trainer.global_step / datamodule.sampler.steps,  # SGD updates per epoch
        "global_step": trainer.global_step,
        "fit_seconds": fit_seconds,  # Trainer.fit's: its setup too
        "train_seconds": train_seconds,  # the epochs and their evaluations alone (linreg.runner.train_seconds)
        "device": str(trainer.strategy.root_device),
        "run_dir": str(run_dir),
        "hparams": hparams,
        "closed_form": None if solution is None else closed_form_summary(solution),
        "excess_loss": None if solution is None or diverged else excess_loss(solution, model.w, model.b),
        # the curvature X̃ᵀX̃/n of the training loss (see linreg/closed_form.py), with the closed form
        "condition_number": None if solution is None else solution.condition_number,
        "max_stable_lr": None if solution is None else solution.max_stable_lr,
        # columns that depend on others (rank below the columns of [X, 1]): none, or their names
        "rank": None if solution is None else solution.rank,
        "collinear_columns": None
        if solution is None or not solution.collinear
        else collinear_names(solution, datamodule),
    }


def closed_form_summary(solution: ClosedForm) -> dict[str, Any]:
    """The closed form in the data's units, how it was solved, and the digits it is estimated to have."""
    return {
        "w": solution.data_w.tolist(),
        "b": solution.data_b.item(),
        "train_loss": solution.loss,
        "method": solution.method,  # "normal equations", "exact, refined" or "minimum norm"
        "digits": solution.digits,  # of the fewest-digit coefficient, estimated; null for a minimum-norm one
        "excess_loss_sound": solution.comparable,  # False: too few digits to measure SGD against
    }


def strict(value: Any) -> Any:
    """`value` with every float that is not finite replaced by None: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict(item) for item in value]
    return value


def collinear_names(solution: ClosedForm, datamodule) -> list[str] | None:
    """The columns that depend on others, by name (the intercept as "intercept"), or None where none does."""
    names = column_names(datamodule, len(solution.w))
    return [names[j] for j in solution.collinear] or None


def write_summary(summary: dict[str, Any], run_dir: str | Path) -> Path:
    """Strict JSON, which every parser reads: a number that is not finite is written as null."""
    path = Path(run_dir) / "summary.json"
    path.write_text(json.dumps(strict(summary), indent=2, allow_nan=False) + "\n")
    return path
