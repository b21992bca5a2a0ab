"""`summary.json`: the machine-readable result of a run, written into its run folder at the end.

    {"w": [...], "b": ..., "true_w": [...] | null, "true_b": ... | null, "train_loss": ...,
     "val_loss": ... | null, "epochs": 3, "global_step": 300, "fit_seconds": ..., "device": "cpu",
     "run_dir": "lightning_logs/version_0", "hparams": {...every CLI flag...},
     "closed_form": {"w": [...], "b": ..., "train_loss": ...} | null}

Later features add keys; these stay.
"""

import json
from pathlib import Path
from typing import Any

import lightning as L

from linreg.closed_form import ClosedForm


def run_summary(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule,
    run_dir: str | Path,
    fit_seconds: float,
    hparams: dict[str, Any],
    solution: ClosedForm | None = None,
) -> dict[str, Any]:
    metrics = trainer.callback_metrics
    true_w = getattr(datamodule, "true_w", None)

    def metric(name: str) -> float | None:
        return float(metrics[name]) if name in metrics else None

    return {
        "w": model.w.detach().reshape(-1).cpu().tolist(),
        "b": model.b.item(),
        "true_w": None if true_w is None else true_w.tolist(),
        "true_b": None if true_w is None else datamodule.true_b,
        "train_loss": metric("train/epoch_loss"),
        "val_loss": metric("val/loss"),
        # Completed epochs, fractional when --max-steps stops mid-epoch (1.5 = one and a half epochs).
        "epochs": trainer.global_step / trainer.num_training_batches,
        "global_step": trainer.global_step,
        "fit_seconds": fit_seconds,
        "device": str(trainer.strategy.root_device),
        "run_dir": str(run_dir),
        "hparams": hparams,
        "closed_form": None
        if solution is None
        else {"w": solution.w.reshape(-1).tolist(), "b": solution.b.item(), "train_loss": solution.loss},
    }


def write_summary(summary: dict[str, Any], run_dir: str | Path) -> Path:
    path = Path(run_dir) / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path
