"""Train the book's linear regression (D2L §3.2) with PyTorch Lightning, and report like the book does.

    linreg-train                                  # the book's run: 1000 examples, batch 10, lr 0.03, 3 epochs
    linreg-train --accelerator gpu                # the same on a GPU (or: python scripts/train.py ...)
    linreg-train --data houses.csv --target price --max-epochs 20    # your own CSV (or Parquet) file
    tensorboard --logdir lightning_logs           # the curves of every run

Prints a start line, one progress bar, `epoch N, loss ...` after each epoch, the errors in estimating w
and b, SGD against the closed form, and the run folder `<logdir>/version_N/` holding the TensorBoard
events, `summary.json` and `checkpoints/last.ckpt`. `--verbose` adds Lightning's own output. Bad input
ends with one line on stderr and exit status 2, before Lightning is even imported where the flags and
files alone show it; a diverging run ends with exit status 1.

This file parses (its checks: linreg.cli.train_checks); `linreg.runner` builds the Trainer and runs it.
"""

import argparse
import contextlib
from pathlib import Path

from linreg.cli import (
    USER_ERRORS,
    Parser,
    a_core_for_the_reader,
    fail,
    finite,
    hardware,
    program,
    quieted,
    readable_file,
    stopped_in_one_line,
)
from linreg.cli.hardware import ACCELERATORS, PRECISIONS
from linreg.cli.train_checks import check, no_ignored_flags
from linreg.errors import CheckpointError, StorageError
from linreg.lr_schedules import SCHEDULES
from linreg.stop_signals import StopSignals

PROG = "train.py"


def steps_per_execution(text: str) -> int | str:
    """--steps-per-execution: "auto" or a whole number."""
    return text if text == "auto" else int(text)


def build_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """The flags; with defaults=False, parsing gives only the flags on the command line (for --resume)."""
    p = Parser(prog=program(PROG), description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("hardware (passed to lightning.Trainer)")
    g.add_argument("--accelerator", type=hardware.accelerator, default="auto", help=f"{', '.join(ACCELERATORS)} (auto)")
    g.add_argument("--devices", type=hardware.devices, default="auto", help="a number, a list like 0,1, or auto (auto)")
    g.add_argument("--strategy", default="auto", help="auto, ddp, ... (default: %(default)s)")
    g.add_argument("--num-nodes", type=int, default=1, help="machines for multi-node DDP (default: %(default)s)")
    g.add_argument("--precision", type=hardware.precision, default="32-true", help=f"{', '.join(PRECISIONS)} (32-true)")
    g = p.add_argument_group("training (the book's hyperparameters)")
    g.add_argument("--max-epochs", type=int, default=3, help="the book's num_epochs (default: %(default)s)")
    g.add_argument("--max-steps", type=int, default=-1, help="stop after this many SGD steps (default: -1, no limit)")
    g.add_argument("--batch-size", type=int, default=10, help="minibatch size (default: %(default)s)")
    g.add_argument("--lr", type=finite, default=0.03, help="learning rate (default: %(default)s)")
    g.add_argument("--init-std", type=finite, default=0.01, help="w ~ N(0, init_std²) at the start, b = 0 (0.01)")
    g.add_argument("--no-bias", action="store_true", help="y_hat = X w: no b (fit_intercept=False); b stays 0")
    g.add_argument("--no-shuffle", action="store_true", help="train on the stored order every epoch")
    g.add_argument("--loss", default="squared", choices=["squared", "absolute", "huber"], help="(default: squared)")
    g.add_argument("--weight-decay", type=finite, default=0.0, help="D2L §3.7's lambd: + lambd·‖w‖²/2 per example (0)")
    g.add_argument(
        "--implementation",
        default="scratch",
        choices=["scratch", "concise"],
        help="the book's from-scratch code (§3.2), or nn.Linear, nn.MSELoss and torch.optim.SGD (§3.5) (scratch)",
    )
    g.add_argument("--huber-delta", type=finite, default=1.0, help="where huber turns from squared to absolute (1.0)")
    g.add_argument("--lr-schedule", choices=SCHEDULES, default="constant", help="each update's rate: the book's "
                   "constant, step, cosine (to 0 at the run's end) or invscaling (constant)")  # fmt: skip
    g.add_argument("--lr-step-size", type=int, help="step: updates between decays (default: one epoch's)")
    g.add_argument("--lr-gamma", type=finite, default=0.5, help="step: the rate's factor at each decay (0.5)")
    g.add_argument("--power-t", type=finite, default=0.25, help="invscaling: lr / (t + 1)^power_t (0.25)")
    g.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop when val/loss has not improved "
                   "for this many evaluations, keeping the best model")  # fmt: skip
    g.add_argument(
        "--steps-per-execution",
        type=steps_per_execution,
        default="auto",
        metavar="K",
        help="SGD updates per Lightning batch: the same steps, Lightning's overhead paid once per K "
        "(default: auto, 16384 // batch size, between 1 and 100)",
    )
    g = p.add_argument_group("synthetic data: y = X true_w + true_b + N(0, noise²)")
    g.add_argument("--num-examples", type=int, default=1000, help="training examples (default: %(default)s)")
    g.add_argument("--num-val", type=int, help="held-out examples, 0 for none (default: 1000; CSV: --val-fraction)")
    g.add_argument("--true-w", type=finite, nargs="+", help="true weights, one per feature, or one for all (2 -3.4)")
    g.add_argument("--true-b", type=finite, help="true bias (default: 4.2, or 0 with --no-bias)")
    g.add_argument("--num-features", type=int, help="features: a true w ~ N(0, 1), or one --true-w value repeated")
    g.add_argument("--noise", type=finite, default=0.01, help="standard deviation of the label noise (0.01)")
    g.add_argument("--sort-by-label", action="store_true", help="store the training set sorted by y")
    g.add_argument("--outliers", type=finite, default=0.0, metavar="FRACTION", help="of training labels made gross (0)")
    g.add_argument("--outlier-scale", type=finite, default=100.0, help="an outlier's error, ± this (default: 100)")
    g.add_argument("--streaming", action="store_true", help="never hold the data: synthetic, or --data's Parquet")
    g = p.add_argument_group("your own data: a CSV file with a header row, or Parquet: a file, a folder or a glob")
    g.add_argument("--data", metavar="PATH", help="train on this CSV or Parquet data instead of synthetic data")
    g.add_argument("--memory-budget", type=finite, default=None, metavar="GB",
                   help="Parquet data that would take more in memory is streamed (default: half the RAM)")  # fmt: skip
    g.add_argument("--no-row-cache", action="store_true",
                   help="streamed: decode the files each epoch, not the pass's copy as rows (8 B a cell)")  # fmt: skip
    g.add_argument("--target", metavar="COLUMN", help="the column to predict (required with --data)")
    g.add_argument("--features", metavar="COLUMN", nargs="+", help="the input columns (default: all but the target)")
    g.add_argument("--val-fraction", type=finite, default=0.2, help="rows held out without --num-val (0.2)")
    g = p.add_argument_group("run")
    g.add_argument(
        "--seed", type=hardware.seed, default=0, help="0 to 2³²-1: fixes the data, the init and the batch order (0)"
    )
    g.add_argument("--logdir", default="lightning_logs", help="runs go to <logdir>/version_N/ (default: %(default)s)")
    g.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue the run saved in this checkpoint with its settings, in a new run folder",
    )
    g.add_argument(
        "--checkpoint-every-n-steps", type=int, default=0, help="also save last-step.ckpt after every N-th step (0)"
    )
    g.add_argument(
        "--checkpoint-every-seconds",
        type=finite,
        default=60,
        metavar="S",
        help="also save last-step.ckpt every S seconds, 0 for never: a killed run loses at most S seconds (60)",
    )
    g.add_argument("--log-every-n-steps", type=int, default=10, help="train/loss and params/* cadence (10)")
    g.add_argument(
        "--closed-form",
        choices=["auto", "always", "never"],
        default="auto",
        help="solve the closed form to compare SGD with; auto: where it costs less than the training (auto)",
    )
    g.add_argument("--verbose", action="store_true", help="also show Lightning's own messages, bars and warnings")
    if not defaults:
        for action in p.flags.values():  # the actions add_argument returned: no default, so absent unless given
            action.default = argparse.SUPPRESS
    return p


def checked(argv: list[str] | None) -> tuple[argparse.Namespace, dict | None]:
    """The flags of `argv` checked, a resumed run's settings merged in, and the checkpoint it resumes (or
    None); USER_ERRORS or argparse's exit for bad input. Nothing runs and nothing is written."""
    args = build_parser().parse_args(argv)
    if args.resume is None:
        check(args)
        no_ignored_flags(args, build_parser(defaults=False).parse_args(argv))
        return args, None
    readable_file("--resume", args.resume, CheckpointError)  # the rest is checked once merged with its run's
    from linreg.checkpoint import read_checkpoint  # torch only
    from linreg.cli.resume import resumed

    checkpoint = read_checkpoint(args.resume)
    args = resumed(args, build_parser(defaults=False).parse_args(argv), checkpoint)
    check(args)
    return args, checkpoint


def run(argv: list[str] | None = None, signals: StopSignals | None = None) -> Path:
    """The command on `argv`: its run folder, or SystemExit with the status (2: bad input, 1: diverged or
    a file that cannot be written, 130 or 143: stopped by SIGINT or SIGTERM). `signals`: the handlers that
    main() installed, which stop training at an update boundary; None in library use."""
    try:
        args, checkpoint = checked(argv)
        from linreg.memory_budget import beyond_budget
        from linreg.runner import run  # Lightning, seconds to import: only once the input is known to be good

        if signals is not None:
            signals.check()  # Ctrl-C while the imports ran
        args.streaming = args.streaming or (args.data is not None and beyond_budget(args))
        with a_core_for_the_reader(args.streaming and args.data is not None):
            return run(args, checkpoint, signals)
    except USER_ERRORS as e:
        fail(program(PROG), e)
    except StorageError as e:
        fail(program(PROG), e, status=1)


def main(argv: list[str] | None = None) -> None:
    """The console script `linreg-train` (it exits with what this returns: nothing, status 0). While it
    runs, it owns SIGINT and SIGTERM (linreg/stop_signals.py) and, unless --verbose, Lightning's logging."""
    verbose = build_parser().parse_args(argv).verbose  # a bad flag ends here, in argparse's one line
    signals = StopSignals()
    quiet = contextlib.nullcontext() if verbose else quieted(program(PROG))
    with stopped_in_one_line(program(PROG)), signals.installed(), quiet:
        run(argv, signals)


if __name__ == "__main__":
    main()
