"""linreg-train's checks of its flags: what would fail later, silently misbehave, or be ignored ends before
anything runs, in one line naming the flag or the file (linreg.cli.train parses, then calls these).

    check(args)                          # UsageError, DataError, CheckpointError: bad values, clashing flags
    no_ignored_flags(args, explicit)     # UsageError: a flag given that this kind of run would ignore
"""

import argparse

from linreg.cli import data_file, hardware, readable_file
from linreg.errors import CheckpointError, DataError, UsageError


def check(args: argparse.Namespace) -> None:
    """Reject what would fail later, or silently misbehave, with one line naming the flag or the file."""
    positive = {"--batch-size": args.batch_size, "--lr": args.lr, "--num-examples": args.num_examples}
    positive |= {"--log-every-n-steps": args.log_every_n_steps, "--max-epochs": args.max_epochs}
    positive |= {"--num-nodes": args.num_nodes}
    if args.steps_per_execution != "auto":
        positive |= {"--steps-per-execution": args.steps_per_execution}
    for flag, value in positive.items():
        if not value > 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    non_negative = {"--num-val": args.num_val or 0, "--noise": args.noise, "--init-std": args.init_std}
    non_negative |= {"--weight-decay": args.weight_decay}
    non_negative |= {"--checkpoint-every-n-steps": args.checkpoint_every_n_steps}
    non_negative |= {"--checkpoint-every-seconds": args.checkpoint_every_seconds}
    for flag, value in non_negative.items():
        if not value >= 0:
            raise UsageError(f"{flag} must not be negative, got {value}")
    for flag, value in (
        ("--lr-step-size", args.lr_step_size),
        ("--lr-gamma", args.lr_gamma),
        ("--power-t", args.power_t),
    ):
        if value is not None and not value > 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    if args.early_stopping is not None and args.early_stopping < 1:
        raise UsageError(f"--early-stopping is a number of evaluations, at least 1: got {args.early_stopping}")
    held_out = args.num_val if args.num_val is not None or args.data is None else args.val_fraction
    if args.early_stopping is not None and held_out == 0:
        raise UsageError("--early-stopping watches val/loss: it needs held-out rows (--num-val, --val-fraction)")
    if args.max_steps == 0 or args.max_steps < -1:
        raise UsageError(f"--max-steps must be positive, or -1 for no limit: got {args.max_steps}")
    if args.num_features is not None and args.num_features <= 0:
        raise UsageError(f"--num-features must be positive, got {args.num_features}")
    if args.true_w is not None and args.num_features is not None and len(args.true_w) not in (1, args.num_features):
        raise UsageError(f"--num-features {args.num_features} disagrees with the {len(args.true_w)} values of --true-w")
    if args.data is not None and args.target is None:
        raise UsageError("--data needs --target, the column to predict")
    if args.implementation == "concise" and args.loss != "squared":
        raise UsageError(f"--implementation concise is the book's nn.MSELoss: not with --loss {args.loss}")
    if not args.huber_delta > 0:
        raise UsageError(f"--huber-delta must be positive, got {args.huber_delta}")
    if not 0 <= args.outliers < 1:
        raise UsageError(f"--outliers is a fraction of the training labels, in [0, 1): got {args.outliers}")
    if args.outliers > 0 and (args.data is not None or args.streaming):
        raise UsageError("--outliers corrupts synthetic labels held in memory: not with --data or --streaming")
    if args.streaming and args.sort_by_label:
        raise UsageError("--streaming makes synthetic data batch by batch: not with --sort-by-label")
    if args.data is not None:
        data_file("--data", args.data, DataError)
    if args.resume is not None:
        readable_file("--resume", args.resume, CheckpointError)
    hardware.accelerator_available("--accelerator", args.accelerator)


# The flags that describe synthetic data, and those that pick a file's columns: given with the other kind
# of data they would be ignored, and recorded in hparams as if used.
SYNTHETIC_ONLY = ("num_examples", "true_w", "true_b", "num_features", "noise", "sort_by_label", "outliers",
                  "outlier_scale")  # fmt: skip
FILE_ONLY = ("target", "features", "val_fraction", "memory_budget", "no_row_cache")
SCHEDULE_ONLY = {"lr_step_size": "step", "lr_gamma": "step", "power_t": "invscaling"}  # the schedule each shapes


def no_ignored_flags(args: argparse.Namespace, explicit: argparse.Namespace) -> None:
    """UsageError for a flag on the command line (`explicit`) that the run would ignore."""
    for name, schedule in SCHEDULE_ONLY.items():
        if name in vars(explicit) and args.lr_schedule != schedule:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} applies to --lr-schedule {schedule}: it would be ignored; leave it out")
    given = [name for name in (FILE_ONLY if args.data is None else SYNTHETIC_ONLY) if name in vars(explicit)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        why = "applies to --data only" if args.data is None else "describes synthetic data, not a --data file"
        raise UsageError(f"{flag} {why}: it would be ignored; leave it out")
