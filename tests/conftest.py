"""Shared test helpers: a quiet CPU Trainer factory and a loader for the scripts in scripts/."""

import importlib.util
from pathlib import Path
from types import ModuleType

import lightning as L
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py as a module, so tests can call its main(argv) in-process."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
