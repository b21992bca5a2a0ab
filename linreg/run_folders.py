"""Run folders claimed atomically, so that runs launched at once never share one.

    run_dir = claim("lightning_logs")                    # lightning_logs/version_N, made by this call
    folder = claim("lightning_logs", prefix="sweep_lr_")  # lightning_logs/sweep_lr_N

Lightning's own numbering lists the folder and then creates the next version: two runs started together
both take version_N and overwrite each other's summary, checkpoints and events. Here the folder is made
with `mkdir`, which fails if another process made it first: the loser tries the next number.

Under DDP only the launching process claims; Lightning starts the other ranks with its environment, which
carries the claimed folder in LINREG_RUN_DIR (`inherited_run_dir`).
"""

import contextlib
import os
from pathlib import Path

from linreg.errors import StorageError

ENV = "LINREG_RUN_DIR"


def claim(logdir: str | Path, prefix: str = "version_") -> Path:
    logdir = Path(logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        taken = [p.name.removeprefix(prefix) for p in logdir.iterdir() if p.name.startswith(prefix)]
        n = max((int(t) for t in taken if t.isdigit()), default=-1) + 1
        while True:
            try:
                (logdir / f"{prefix}{n}").mkdir()
                return logdir / f"{prefix}{n}"
            except FileExistsError:
                n += 1  # another run took it between our listing and our mkdir
    except (FileExistsError, NotADirectoryError):
        raise StorageError(f"--logdir {logdir}: a file is in the way of the folder") from None
    except OSError as e:
        raise StorageError(f"--logdir {logdir}: cannot create a run folder in it ({e.strerror or e})") from None


def release(run_dir: str | Path) -> None:
    """Remove a claimed folder that the run wrote nothing into: a run that failed or was stopped before it
    began leaves nothing behind. A folder with anything in it stays."""
    with contextlib.suppress(OSError):  # not empty, or already gone
        Path(run_dir).rmdir()


def launching_process() -> bool:
    """True in the process a user started; False in the DDP ranks that Lightning, torchrun or SLURM start."""
    return all(int(os.environ.get(name, "0")) == 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def inherited_run_dir() -> Path | None:
    """The run folder the launching process claimed, in a DDP rank it started; None elsewhere."""
    value = os.environ.get(ENV)
    return Path(value) if value else None
