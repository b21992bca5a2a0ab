"""Shared test helpers: a quiet CPU Trainer factory and the commands of linreg.cli."""

import fcntl
import importlib
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
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
def cache(tmp_path, monkeypatch) -> Path:
    """$LINREG_CACHE in this test's own folder: the pass, row caches and conversions of streamed data.
    Modules of streamed data use it for every test: `pytestmark = pytest.mark.usefixtures("cache")`."""
    monkeypatch.setenv("LINREG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


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
    """Records each training batch with the parameters just before and just after it: with the plain core's
    (X, y) batches that is one SGD step; with the CLI stack's blocks (X, y, lengths), K of them."""

    def __init__(self):
        self.steps = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        X, y, lengths = batch if len(batch) == 3 else (*batch, [len(batch[0])])  # a block: X.split(lengths)
        w, b = module.w.detach().clone(), module.b.detach().clone()
        self.steps.append({"X": X.clone(), "y": y.clone(), "lengths": list(lengths), "w": w, "b": b})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps[-1] |= {"w_after": module.w.detach().clone(), "b_after": module.b.detach().clone()}
        self.steps[-1]["global_step"] = trainer.global_step


class TerminalRun(subprocess.Popen):
    """A CLI run in a new process whose stderr is a terminal (a pseudo-terminal), as for a user who presses
    Ctrl-C: it draws its progress bar there. A thread reads the terminal, so that the run never blocks on it."""

    def __init__(self, args: list[str]) -> None:
        terminal, self.terminal_side = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100, as a window has
        super().__init__(
            [sys.executable, "scripts/train.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.terminal_side
        )
        os.close(self.terminal_side)
        self.shown = b""
        self.reader = threading.Thread(target=self.read, args=(terminal,), daemon=True)
        self.reader.start()

    def read(self, terminal: int) -> None:
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the run closed its side
                chunk = b""
            if not chunk:
                os.close(terminal)
                return
            self.shown += chunk

    def stderr_lines(self) -> list[str]:
        """What the run wrote to its stderr, without the progress bar's redraws (after it has ended)."""
        self.reader.join(10)
        text = self.shown.decode(errors="replace")
        lines = (line.strip() for line in re.split(r"[\r\n]+", text))
        return [line for line in lines if line and not re.match(r"(Training|Epoch \d+):", line)]
