"""The project's commands, each a `main(argv)` here with a console script and a thin file in scripts/:

    linreg-train      python scripts/train.py        train and report like the book (linreg.cli.train)
    linreg-predict    python scripts/predict.py      predict the rows of a CSV or Parquet file with a checkpoint
    linreg-sweep      python scripts/sweep.py        one run per value of one flag: the book's exercises
    linreg-benchmark  python scripts/benchmark.py    the book's loop against the Trainer, timed
    linreg-figures    python scripts/figures.py      regenerate the figures of the README and docs/

Answering at once: a command parses and checks its flags and files with the standard library (and torch
where a check needs it: reading a checkpoint, asking for a GPU) before anything imports Lightning, which
takes seconds. `--help`, `--version` and bad input never wait for it.
"""

import argparse
import contextlib
import errno
import logging
import math
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from linreg import __version__
from linreg.errors import USER_ERRORS, UsageError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (not the usage block), `--version`, and `flags`: every option string
    given to `add_argument`, its own or a group's, with the action that add_argument returned."""

    def __init__(self, *args, **kwargs) -> None:
        self.flags: dict[str, argparse.Action] = {}
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"linreg {__version__}")

    def recorded(self, action: argparse.Action) -> argparse.Action:
        self.flags |= dict.fromkeys(action.option_strings, action)
        return action

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        return self.recorded(super().add_argument(*args, **kwargs))

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        add_to_group = group.add_argument
        group.add_argument = lambda *args, **kwargs: self.recorded(add_to_group(*args, **kwargs))
        return group

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
        if Path(path).is_symlink():  # the link is there; what it points to is not
            try:
                Path(path).resolve(strict=True)
            except (RuntimeError, OSError) as e:  # a loop: RuntimeError up to Python 3.12, OSError(ELOOP) after
                if isinstance(e, RuntimeError) or e.errno == errno.ELOOP:
                    raise error(f"{flag} {path}: a symbolic link that loops back on itself") from None
            raise error(f"{flag} {path}: a symbolic link to {os.readlink(path)}, which does not exist")
        raise error(f"{flag} {path}: no such file")
    if not Path(path).is_file():
        raise error(f"{flag} {path}: not a file")
    if not os.access(path, os.R_OK):
        raise error(f"{flag} {path}: cannot be read (permission denied)")


def data_file(flag: str, path: str, error: type[Exception] = UsageError) -> None:
    """A --data file must be Parquet (it starts with the bytes PAR1) or text: no other binary format. A folder
    or a glob of Parquet parts is checked part by part as it is opened (linreg.parquet_parts)."""
    if Path(path).is_dir() or set("*?[") & set(path):  # linreg.parquet_parts.is_parts, without importing torch
        return
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


@contextlib.contextmanager
def stopped_in_one_line(
    prog: str, stopped: str = "before training began: nothing was trained or saved"
) -> Iterator[None]:
    """A command's end, whatever stops it: a signal before training began, or Ctrl-C while Python had
    its default handler, is one line (`stopped` says what it means) and exit 128 + the signal's number; a
    reader that closed its end of the pipe (`linreg-predict ... | head`) ends the command quietly, with
    the status of a process killed by SIGPIPE, as Unix tools do."""
    from linreg.stop_signals import Interrupted

    try:
        yield
    except (Interrupted, KeyboardInterrupt) as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"{prog}: {signal.Signals(signum).name} {stopped}", file=sys.stderr)
        sys.exit(128 + signum)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's final flush goes nowhere
        sys.exit(128 + signal.SIGPIPE)


SILENCED = (  # Lightning's warnings about what this project does on purpose
    # The data lives in memory and a batch is one indexing op: worker processes would only add IPC.
    ".*does not have many workers.*",
    ".*isinstance.treespec, LeafSpec.*",  # Lightning against torch>=2.9, harmless
    ".*The dirpath has changed from.*",  # --resume writes a new run folder
    # The sampler's position travels in the checkpoint (linreg.block_loading): the run is resumable.
    ".*your dataloader is not resumable.*",
    # Lightning counts its batches against log_every_n_steps; a batch carries K updates here, and train/loss
    # and params/* are written every log_every_n_steps updates by the module itself.
    ".*is smaller than the logging interval.*",
)


@contextlib.contextmanager
def a_core_for_the_reader(streams: bool) -> Iterator[None]:
    """While a file streams (linreg.row_group_pool): torch's CPU threads one fewer than it had, so that the
    reading thread has a core of its own. Sharing one with training's parallel ops, whose idle threads spin,
    the reader gets almost nothing at its low priority until training waits for it; with a core of its
    own it reads while training runs (docs/performance.md). Put back as it was on the way out."""
    import torch

    threads = torch.get_num_threads()
    if streams and threads > 1:
        torch.set_num_threads(threads - 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def quieted(prog: str) -> Iterator[None]:
    """While a command runs, the terminal shows the project's lines: not Lightning's banners ("GPU
    available: ...", its tips), not its warnings about what this project does on purpose, and any other
    warning as one line of ours. Everything is put back as it was on the way out: library code and
    notebooks keep Python's own warnings and logging. `--verbose` skips this.

    Info lines are disabled process-wide (`logging.disable`) rather than by logger: importing Lightning,
    which happens inside, sets its own loggers' levels, and its children inherit them."""
    disabled = logging.root.manager.disable  # what logging.disable last set: NOTSET unless someone did
    with warnings.catch_warnings():  # restores the filters and showwarning on the way out
        logging.disable(logging.INFO)  # warnings and errors stay
        for message in SILENCED:
            warnings.filterwarnings("ignore", message)

        def one_line(message, category, filename, lineno, file=None, line=None) -> None:
            print(f"{prog}: warning: {str(message).strip().splitlines()[0]}", file=sys.stderr)

        warnings.showwarning = one_line
        try:
            yield
        finally:
            logging.disable(disabled)


__all__ = [
    "USER_ERRORS",
    "Parser",
    "data_file",
    "fail",
    "finite",
    "program",
    "quieted",
    "readable_file",
    "stopped_in_one_line",
]
