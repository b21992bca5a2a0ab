"""`linreg-train --resume CKPT`: the checkpoint's run settings, and the flags that may change on the way.

    args = resumed(args, explicit, checkpoint)     # explicit: only the flags on the command line

Every checkpoint holds the run's flags, so `--resume CKPT` alone continues the run. The rules:
- Flags that say how long it goes on, what it logs and saves, where it runs and writes may change
  (SAFE_TO_CHANGE), each change said in one line; any other that contradicts the checkpoint is refused.
  --batch-size may change with --devices or --num-nodes where the global batch stays the same.
  `--data` may name a file's new place: its content must be the checkpoint's (linreg/fingerprint.py).
- The limits are the checkpoint's unless given: a run resumes with its own --max-epochs and --max-steps.
  A new --max-epochs without --max-steps lifts a --max-steps that the checkpoint's run already reached:
  the run stopped there, and asking for more epochs means going on.
- A run with nothing left to train under its limits is refused in one line that says how to go further.
"""

import argparse
from pathlib import Path

from linreg import __version__
from linreg.errors import CheckpointError, UsageError
from linreg.run_folders import launching_process

# What a resumed run may change: how long it goes on, what it logs and saves, where it runs and writes.
# Anything else (data, model, lr, batch size, seed, steps per execution, ...) would make it another run.
SAFE_TO_CHANGE = {
    "max_epochs", "max_steps", "log_every_n_steps", "checkpoint_every_n_steps", "checkpoint_every_seconds",
    "accelerator", "devices", "strategy", "num_nodes", "logdir", "closed_form", "verbose", "no_row_cache",
}  # fmt: skip


def shown(value) -> str:
    """A flag's value as typed: `1 2 3` for a list, `not given` for None."""
    if value is None:
        return "not given"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def same_global_batch(flags: dict, explicit: argparse.Namespace, batch_size: int | None) -> bool:
    """Whether a new --batch-size keeps the run's global batch (per process × devices × nodes), with the
    devices and nodes given now: 2 processes at 5 resume as 1 at 10, the same order and the same steps."""
    if batch_size is None:
        return False
    now = {**flags, **{k: v for k, v in vars(explicit).items() if k in ("devices", "num_nodes")}}
    try:
        before = int(flags["batch_size"]) * int(flags["devices"]) * int(flags["num_nodes"])
        return before == int(batch_size) * int(now["devices"]) * int(now["num_nodes"])
    except (KeyError, TypeError, ValueError):  # "auto" devices: the global batch is not known here
        return False


def resumed(args: argparse.Namespace, explicit: argparse.Namespace, checkpoint: dict) -> argparse.Namespace:
    """The checkpoint's run settings, with the flags given now (`explicit`, those on the command line) where
    they are safe to change, one line each. A flag that contradicts the checkpoint's run, or a run with
    nothing left to train, ends here in one line, before any folder is made."""
    saved = checkpoint.get("linreg")
    if not isinstance(saved, dict) or "flags" not in saved:
        raise CheckpointError(f"{args.resume}: holds no run settings (an older linreg wrote it): start a new run")
    if saved.get("version") != __version__:
        raise CheckpointError(f"{args.resume}: written by linreg {saved.get('version')}, this is linreg {__version__}")
    flags = {**vars(args), **saved["flags"], "resume": args.resume}
    for name, value in vars(explicit).items():
        flag, before = "--" + name.replace("_", "-"), flags.get(name)
        if name == "resume" or value == before:
            continue
        if (
            name not in SAFE_TO_CHANGE
            and not (name == "data" and before is not None)
            and not same_global_batch(saved["flags"], explicit, value if name == "batch_size" else None)
        ):
            raise UsageError(
                f"{flag} {shown(value)} contradicts the checkpoint's run ({flag} {shown(before)}): resume "
                "without it, or start a new run"
            )
        if launching_process():  # not once more from each DDP rank
            print(f"resuming with {flag} {shown(value)} (the checkpoint's run had {shown(before)})")
        flags[name] = value
    if flags.get("data") is not None and "data" not in vars(explicit) and not Path(flags["data"]).exists():
        raise CheckpointError(
            f"the checkpoint's --data {flags['data']} is gone: if the file moved, give its new path, "
            f"--resume {args.resume} --data NEW_PATH (its content is checked against the checkpoint's)"
        )
    step = checkpoint.get("global_step", 0)
    if "max_epochs" in vars(explicit) and "max_steps" not in vars(explicit) and 0 <= flags["max_steps"] <= step:
        if launching_process():
            print(
                f"resuming with --max-steps -1: the checkpoint's run stopped at its --max-steps {flags['max_steps']}, "
                f"and --max-epochs {flags['max_epochs']} asks to go on"
            )
        flags["max_steps"] = -1
    something_left(flags, checkpoint)
    return argparse.Namespace(**flags)


def something_left(flags: dict, checkpoint: dict) -> None:
    """UsageError when the checkpoint's run already reached the limits it resumes with: Lightning would
    start, train nothing and report the old numbers as a new run."""
    step, epochs, resume = checkpoint.get("global_step", 0), checkpoint.get("epoch", 0), f"--resume {flags['resume']}"
    if 0 <= flags["max_steps"] <= step:
        raise UsageError(
            f"the checkpoint's run has taken {step} steps, its --max-steps {flags['max_steps']}: nothing is left "
            f"to train; go further with {resume} --max-steps N (N > {step}), or --max-steps -1 for --max-epochs"
        )
    if epochs >= flags["max_epochs"]:
        raise UsageError(
            f"the checkpoint's run has finished {epochs} epochs ({step} steps), its --max-epochs "
            f"{flags['max_epochs']}: nothing is left to train; go further with {resume} --max-epochs N (N > {epochs})"
        )
