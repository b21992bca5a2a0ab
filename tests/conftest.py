"""Shared test helpers: a quiet CPU Trainer factory and the commands of linreg.cli."""

import importlib
from pathlib import Path
from types import ModuleType

import lightning as L
import pytest
from lightning.pytorch.loggers import Logger

ROOT = Path(__file__).resolve().parents[1]


def command(name: str) -> ModuleType:
    """The module of a command (linreg.cli.train, ...), so tests can call its main(argv) in-process."""
    return importlib.import_module(f"linreg.cli.{name}")


@pytest.fixture
def make_trainer(tmp_path):
    """A real Trainer on one CPU device, without progress bar, checkpoints or logger unless asked."""

    def make(**kwargs) -> L.Trainer:
        defaults = dict(
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
            default_root_dir=tmp_path,
        )
        return L.Trainer(**(defaults | kwargs))

    return make


class RecordingLogger(Logger):
    """A Lightning logger that keeps every (step, metrics) it is given, for tests to read back."""

    def __init__(self):
        super().__init__()
        self.records: list[tuple[int, dict]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.records.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def values(self, tag: str) -> list[tuple[int, float]]:
        return [(step, metrics[tag]) for step, metrics in self.records if tag in metrics]


class StepRecorder(L.Callback):
    """Records each training batch with the parameters just before and just after it: with one minibatch a
    batch (steps_per_execution 1, the DataModules' default) that is one SGD step; with K, a block of K."""

    def __init__(self):
        self.steps = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        X, y, lengths = batch  # the block's minibatches, concatenated: X.split(lengths) gives them back
        w, b = module.w.detach().clone(), module.b.detach().clone()
        self.steps.append({"X": X.clone(), "y": y.clone(), "lengths": list(lengths), "w": w, "b": b})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps[-1] |= {"w_after": module.w.detach().clone(), "b_after": module.b.detach().clone()}
        self.steps[-1]["global_step"] = trainer.global_step
