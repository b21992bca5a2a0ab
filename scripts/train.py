"""Train the book's linear regression (D2L §3.2) with PyTorch Lightning, and report like the book does.

    python scripts/train.py                       # the book's run: 1000 examples, batch 10, lr 0.03, 3 epochs
    python scripts/train.py --accelerator gpu     # the same on a GPU
    python scripts/train.py --data houses.csv --target price --max-epochs 20    # your own CSV
    tensorboard --logdir lightning_logs           # the curves of every run

Prints `epoch N, loss ...` after each epoch, then the errors in estimating w and b, then the run folder
`<logdir>/version_N/` holding the TensorBoard events, `summary.json` and `checkpoints/last.ckpt`.
Bad input ends with one line on stderr and exit status 2; a diverging run with exit status 1.
"""

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from linreg.callbacks import BookReport, ProgressBar, StepCheckpoint, losses_line, parameter_errors
from linreg.checkpoint import CheckpointError, read_checkpoint
from linreg.csv_data import CSVRegressionDataModule, DataError
from linreg.data import InMemoryRegressionDataModule, SyntheticRegressionDataModule
from linreg.loggers import TensorBoard
from linreg.model import LinearRegressionScratch
from linreg.sampler import ResumeError, auto_steps_per_execution
from linreg.streaming import StreamingRegressionDataModule
from linreg.summary import run_summary, write_summary


class UsageError(ValueError):
    """A flag's value that cannot work; the message is one line for the user."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def finite(text: str) -> float:
    """A float flag's type: nan and inf are refused, as argparse refuses a word."""
    value = float(text)  # ValueError: argparse says "invalid finite value: 'x'"
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def steps_per_execution(text: str) -> int | str:
    """--steps-per-execution: "auto" or a whole number."""
    return text if text == "auto" else int(text)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="train.py", description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("hardware (passed to lightning.Trainer)")
    g.add_argument("--accelerator", default="auto", help="cpu, gpu, mps or auto (default: %(default)s)")
    g.add_argument("--devices", default="auto", help="how many devices, a list like 0,1, or auto (default: auto)")
    g.add_argument("--strategy", default="auto", help="auto, ddp, ... (default: %(default)s)")
    g.add_argument("--num-nodes", type=int, default=1, help="machines for multi-node DDP (default: %(default)s)")
    g.add_argument("--precision", default="32-true", help="32-true, 64-true, ... (default: %(default)s)")
    g = p.add_argument_group("training (the book's hyperparameters)")
    g.add_argument("--max-epochs", type=int, default=3, help="the book's num_epochs (default: %(default)s)")
    g.add_argument("--max-steps", type=int, default=-1, help="stop after this many SGD steps (default: -1, no limit)")
    g.add_argument("--batch-size", type=int, default=10, help="minibatch size (default: %(default)s)")
    g.add_argument("--lr", type=finite, default=0.03, help="learning rate (default: %(default)s)")
    g.add_argument("--init-std", type=finite, default=0.01, help="w ~ N(0, init_std²) at the start, b = 0 (0.01)")
    g.add_argument("--no-shuffle", action="store_true", help="train on the stored order every epoch")
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
    g.add_argument("--true-w", type=finite, nargs="+", help="true weights, one per feature (default: 2 -3.4)")
    g.add_argument("--true-b", type=finite, default=4.2, help="true bias (default: %(default)s)")
    g.add_argument("--num-features", type=int, help="without --true-w: draw a true w ~ N(0, 1) of this size")
    g.add_argument("--noise", type=finite, default=0.01, help="standard deviation of the label noise (0.01)")
    g.add_argument("--sort-by-label", action="store_true", help="store the training set sorted by y")
    g.add_argument("--streaming", action="store_true", help="never store the data: made per batch, any size")
    g = p.add_argument_group("your own data: a CSV file with a header row")
    g.add_argument("--data", metavar="FILE.csv", help="train on this CSV instead of synthetic data")
    g.add_argument("--target", metavar="COLUMN", help="the column to predict (required with --data)")
    g.add_argument("--features", metavar="COLUMN", nargs="+", help="the input columns (default: all but the target)")
    g.add_argument("--val-fraction", type=finite, default=0.2, help="rows held out without --num-val (0.2)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="fixes the data, the init and the batch order (default: 0)")
    g.add_argument("--logdir", default="lightning_logs", help="runs go to <logdir>/version_N/ (default: %(default)s)")
    g.add_argument("--resume", metavar="CKPT", help="continue the run saved in this checkpoint, in a new run folder")
    g.add_argument(
        "--checkpoint-every-n-steps", type=int, default=0, help="also save last-step.ckpt after every N-th step (0)"
    )
    g.add_argument("--log-every-n-steps", type=int, default=10, help="train/loss and params/* cadence (10)")
    g.add_argument(
        "--closed-form",
        choices=["auto", "always", "never"],
        default="auto",
        help="solve the closed form to compare SGD with; auto: where it costs less than the training (auto)",
    )
    return p


def check(args: argparse.Namespace) -> None:
    """Reject what would fail later, or silently misbehave, with one line naming the flag."""
    positive = {"--batch-size": args.batch_size, "--lr": args.lr, "--num-examples": args.num_examples}
    positive |= {"--log-every-n-steps": args.log_every_n_steps}
    if args.steps_per_execution != "auto":
        positive |= {"--steps-per-execution": args.steps_per_execution}
    for flag, value in positive.items():
        if not value > 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    non_negative = {"--num-val": args.num_val or 0, "--noise": args.noise, "--init-std": args.init_std}
    non_negative |= {"--checkpoint-every-n-steps": args.checkpoint_every_n_steps}
    for flag, value in non_negative.items():
        if not value >= 0:
            raise UsageError(f"{flag} must not be negative, got {value}")
    if args.num_features is not None and args.num_features <= 0:
        raise UsageError(f"--num-features must be positive, got {args.num_features}")
    if args.true_w is not None and args.num_features is not None and len(args.true_w) != args.num_features:
        raise UsageError(f"--num-features {args.num_features} disagrees with the {len(args.true_w)} values of --true-w")
    if args.data is not None and args.target is None:
        raise UsageError("--data needs --target, the column to predict")
    if args.streaming and (args.data is not None or args.sort_by_label):
        raise UsageError("--streaming makes synthetic data batch by batch: not with --data or --sort-by-label")
    if args.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(f"--accelerator {args.accelerator}: no CUDA GPU is available on this machine")


def build(args: argparse.Namespace) -> tuple[InMemoryRegressionDataModule, LinearRegressionScratch, L.Trainer]:
    """The DataModule, the module and the Trainer that a command line asks for (benchmark.py reuses it)."""
    # The data lives in memory and batches are one indexing op: worker processes would only add IPC.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")  # Lightning vs torch>=2.9, harmless
    warnings.filterwarnings("ignore", ".*The dirpath has changed from.*")  # --resume writes a new run folder
    # The sampler's position travels in the checkpoint (InMemoryRegressionDataModule.blocks): it is resumable.
    warnings.filterwarnings("ignore", ".*your dataloader is not resumable.*")
    # Lightning counts its batches against log_every_n_steps; a batch carries K updates here, and train/loss
    # and params/* are written every log_every_n_steps updates by the module itself.
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
    L.seed_everything(args.seed, verbose=False)  # the initialization of w; data and order have their own
    K = args.steps_per_execution
    K = auto_steps_per_execution(args.batch_size) if K == "auto" else K
    if args.data is not None:
        datamodule = CSVRegressionDataModule(
            args.data,
            args.target,
            args.features,
            args.num_val,
            args.val_fraction,
            args.batch_size,
            args.seed,
            shuffle=not args.no_shuffle,
            steps_per_execution=K,
        )
    else:
        synthetic = dict(
            true_w=args.true_w if args.true_w or args.num_features else [2.0, -3.4],
            true_b=args.true_b,
            num_examples=args.num_examples,
            num_val=1000 if args.num_val is None else args.num_val,
            batch_size=args.batch_size,
            noise=args.noise,
            seed=args.seed,
            num_features=args.num_features,
            shuffle=not args.no_shuffle,
            sort_by_label=args.sort_by_label,
            steps_per_execution=K,
        )
        module = StreamingRegressionDataModule if args.streaming else SyntheticRegressionDataModule
        datamodule = module(**synthetic)
    model = LinearRegressionScratch(num_inputs=datamodule.num_inputs, lr=args.lr, init_std=args.init_std)
    trainer = L.Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        num_nodes=args.num_nodes,
        precision=args.precision,
        max_epochs=args.max_epochs,
        max_steps=args.max_steps,
        logger=TensorBoard(args.logdir, name=""),
        callbacks=[
            ModelCheckpoint(save_last=True, save_top_k=0),  # last.ckpt at the end of fit
            BookReport(args.closed_form),
            ProgressBar(),
            # and after every N-th step if asked, in the middle of an epoch too (README, "Resuming")
            *([StepCheckpoint(args.checkpoint_every_n_steps)] if args.checkpoint_every_n_steps > 0 else []),
        ],
        log_every_n_steps=args.log_every_n_steps,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # MinibatchSampler already has the book's semantics
        enable_model_summary=False,
    )
    return datamodule, model, trainer


def rounded(values: list[float]) -> list[float]:
    return [round(v, 6) for v in values]


say = rank_zero_only(print)  # under DDP every rank runs this script: only rank 0 talks


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    try:
        check(args)
        checkpoint = read_checkpoint(args.resume) if args.resume is not None else None
        return run(args, checkpoint)
    except (UsageError, DataError, CheckpointError, ResumeError, MisconfigurationException) as e:
        print(f"train.py: error: {e}", file=sys.stderr)  # bad input: one line, no traceback
        sys.exit(2)
    finally:
        # Lightning leaves the DDP process group up after fit; left to interpreter exit, gloo's threads can
        # abort the process ("terminate called without an active exception").
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run(args: argparse.Namespace, checkpoint: dict | None = None) -> Path:
    say(f"seed {args.seed}")
    if args.streaming:
        num_val = 1000 if args.num_val is None else args.num_val
        say(
            f"streaming: {args.num_examples} examples, never stored; the loss after each epoch is measured "
            f"on a fixed held-out stream of {num_val} examples, not on the training set"
        )
    datamodule, model, trainer = build(args)
    if isinstance(datamodule, CSVRegressionDataModule) and checkpoint is not None:
        datamodule.check_resume(checkpoint.get(type(datamodule).__qualname__, {}))
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=args.resume, weights_only=True if args.resume else None)
    fit_seconds = time.perf_counter() - start
    diverged = model.diverged_at_step is not None
    if model.evaluated_at_step != trainer.global_step and not diverged:  # --max-steps stopped it mid-epoch
        trainer.validate(model, datamodule=datamodule, verbose=False)
        if trainer.is_global_zero:  # no progress bar is active any more: a plain print
            print(f"step {trainer.global_step}, {losses_line(trainer.callback_metrics)}")
    run_dir = Path(trainer.log_dir)  # a broadcast from rank 0 under DDP: every rank asks, once
    if not trainer.is_global_zero:
        return run_dir

    solution = next(c for c in trainer.callbacks if isinstance(c, BookReport)).solution
    summary = run_summary(trainer, model, datamodule, run_dir, fit_seconds, vars(args), solution)
    write_summary(summary, run_dir)
    if diverged:
        print(
            f"train.py: error: the loss became inf or nan by step {model.diverged_at_step} with --lr {args.lr:g}: "
            f"the steps overshoot and grow. Try a smaller learning rate, e.g. --lr {args.lr / 10:g}. "
            f"What was logged is in {run_dir}",
            file=sys.stderr,
        )
        sys.exit(1)
    errors = parameter_errors(model, datamodule)
    if errors is not None and len(errors[0]) > 10:
        print(f"error in estimating w: norm {errors[0].norm():.6f}, largest {errors[0].abs().max():.6f}")
        print(f"error in estimating b: {errors[1]:.6f}")
    elif errors is not None:
        print(f"error in estimating w: {rounded(errors[0].tolist())}")
        print(f"error in estimating b: {errors[1]:.6f}")
    names = f" ({', '.join(datamodule.feature_names)})" if datamodule.feature_names else ""
    if solution is not None:  # none for streamed data (no training set in memory), or skipped by --closed-form
        closed = summary["closed_form"]
        print(f"sgd:         w{names} {rounded(summary['w'])}, b {summary['b']:.6f}, loss {summary['train_loss']:.6g}")
        print(
            f"closed form: w{names} {rounded(closed['w'])}, b {closed['b']:.6f}, loss {closed['train_loss']:.6g} "
            f"(sgd is {summary['excess_loss']:.3g} above it)"
        )
    print(f"run folder: {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
