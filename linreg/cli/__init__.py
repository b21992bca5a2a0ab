"""The project's commands, each a `main(argv)` here with a console script and a thin file in scripts/:

    linreg-train      python scripts/train.py        train and report like the book (linreg.cli.train)
    linreg-predict    python scripts/predict.py      predict the rows of a CSV or Parquet file with a checkpoint
    linreg-sweep      python scripts/sweep.py        one run per value of one flag: the book's exercises
    linreg-benchmark  python scripts/benchmark.py    the book's loop against the Trainer, timed
    linreg-figures    python scripts/figures.py      regenerate the README's figures

Answering at once: a command parses and checks its flags and files with the standard library (and torch
where a check needs it: reading a checkpoint, asking for a GPU) before anything imports Lightning, which
takes seconds. `--help`, `--version` and bad input never wait for it.
"""

import argparse
import logging
import math
import os
import sys
import warnings
from pathlib import Path

from linreg import __version__
from linreg.errors import USER_ERRORS, UsageError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (not the usage block) and `--version`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"linreg {__version__}")

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def finite(text: str) -> float:
    """A float flag's type: nan and inf are refused, as argparse refuses a word."""
    value = float(text)  # ValueError: argparse says "invalid finite value: 'x'"
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def program(script: str) -> str:
    """The name errors start with: the console script's (linreg-train), else the script's (train.py)."""
    name = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else ""
    return name if name.startswith("linreg-") else script


def fail(prog: str, error: Exception, status: int = 2):
    """Bad input: one line on stderr, no traceback, and the exit status."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    sys.exit(status)


def readable_file(flag: str, path: str, error: type[Exception] = UsageError) -> None:
    if not Path(path).exists():
        raise error(f"{flag} {path}: no such file")
    if not Path(path).is_file():
        raise error(f"{flag} {path}: not a file")
    if not os.access(path, os.R_OK):
        raise error(f"{flag} {path}: cannot be read (permission denied)")


def data_file(flag: str, path: str, error: type[Exception] = UsageError) -> None:
    """A --data file must be Parquet (it starts with the bytes PAR1) or text: no other binary format."""
    readable_file(flag, path, error)
    with open(path, "rb") as f:
        head = f.read(65536)
    if head.startswith(b"PAR1"):
        return
    try:
        text = head.decode("utf-8-sig") if len(head) < 65536 else head[:-3].decode("utf-8-sig")  # whole chars
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise error(f"{flag} {path}: neither a CSV file nor a Parquet file (binary data, or text that is not UTF-8)")


def gpu_available(accelerator: str, error: type[Exception] = UsageError) -> None:
    """`--accelerator gpu` (or cuda) on a machine without a CUDA GPU: one line, with torch but not Lightning."""
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise error(f"--accelerator {accelerator}: no CUDA GPU is available on this machine")


def quiet(prog: str) -> None:
    """The terminal shows the project's lines: not Lightning's banners ("GPU available: ...", its tips,
    "`Trainer.fit` stopped"), not its warnings about what this project does on purpose, and any other
    warning as one line of ours. `--verbose` skips this."""
    for name in ("lightning.pytorch", "lightning.fabric"):  # their info lines; warnings and errors stay
        logging.getLogger(name).setLevel(logging.WARNING)
    # The data lives in memory and a batch is one indexing op: worker processes would only add IPC.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")  # Lightning vs torch>=2.9, harmless
    warnings.filterwarnings("ignore", ".*The dirpath has changed from.*")  # --resume writes a new run folder
    # The sampler's position travels in the checkpoint (InMemoryRegressionDataModule.blocks): it is resumable.
    warnings.filterwarnings("ignore", ".*your dataloader is not resumable.*")
    # Lightning counts its batches against log_every_n_steps; a batch carries K updates here, and train/loss
    # and params/* are written every log_every_n_steps updates by the module itself.
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prog}: warning: {str(message).strip().splitlines()[0]}", file=sys.stderr)

    warnings.showwarning = one_line


__all__ = ["USER_ERRORS", "Parser", "data_file", "fail", "finite", "gpu_available", "program", "quiet", "readable_file"]
