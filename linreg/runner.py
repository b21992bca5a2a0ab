"""What `linreg-train` runs once its flags are checked: build the DataModule, module and Trainer, fit, report.

    from linreg.cli.train import build_parser
    from linreg.runner import build, run
    datamodule, model, trainer = build(build_parser().parse_args(["--batch-size", "100"]))

`build` is the Trainer the command line asks for (the benchmark times exactly this): the classes of
linreg/stack.py, with the callbacks, logger and checkpoint plugin of the layers around them. `run` fits it
and prints the book's report. Neither touches process-wide state: the commands quiet Lightning's banners
and warnings in their `main()` only (`linreg.cli.quieted`).
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.utilities import rank_zero_only

from linreg.book_report import BookReport, conditioning, losses_line
from linreg.cli import program
from linreg.data import RegressionDataModule
from linreg.early_stopping import best_checkpoint, early_stopping_callbacks, early_stopping_line
from linreg.errors import UsageError
from linreg.fast_hooks import NoProfiler
from linreg.fault_tolerance import AtomicCheckpointIO, StepCheckpoint
from linreg.memory_budget import beyond_budget, streamed_path
from linreg.model import LinearRegressionScratch
from linreg.progress_bar import ProgressBar
from linreg.report import divergence_line, largest_label_fits, print_results
from linreg.run_folders import ENV, claim, inherited_run_dir, launching_process, release
from linreg.stack import FileData, StreamedData, StreamedFileData, SyntheticData, make_model
from linreg.steps_per_execution import auto_steps_per_execution
from linreg.stop_signals import StopSignals
from linreg.summary import run_summary, write_summary
from linreg.tensorboard_logger import MergedTensorBoardLogger, log_hparams

print_rank_zero = rank_zero_only(print)  # under DDP every process runs this: only rank 0 talks


def true_w(args: argparse.Namespace) -> list[float] | None:
    """--true-w as given, one value repeated for --num-features (D2L §3.7: 0.01 for each of 200), the
    book's [2, -3.4] without either, or None: drawn from the seed for --num-features alone."""
    if args.true_w is not None and args.num_features is not None and len(args.true_w) == 1:
        return args.true_w * args.num_features
    return args.true_w if args.true_w or args.num_features else [2.0, -3.4]


def build(
    args: argparse.Namespace, progress_bar: bool | None = None, signals: StopSignals | None = None
) -> tuple[RegressionDataModule, LinearRegressionScratch, L.Trainer]:
    """The DataModule, the module and the Trainer that a command line asks for; with the progress bar
    where stderr is a terminal, unless `progress_bar` says otherwise; stopped by the command's `signals`."""
    L.seed_everything(args.seed, verbose=False)  # the initialization of w; data and order have their own
    K = args.steps_per_execution
    K = auto_steps_per_execution(args.batch_size) if K == "auto" else K
    if args.data is not None:
        file = (args.data, args.target, args.features, args.num_val, args.val_fraction, args.batch_size, args.seed)
        options = dict(
            shuffle=not args.no_shuffle,
            steps_per_execution=K,
            center=not args.no_bias,  # a model without b: scaled, not centered (docs/your-data.md)
        )
        args.streaming = args.streaming or beyond_budget(args)
        if args.streaming:  # a CSV file is converted to Parquet once; the checkpoint fingerprints the user's file
            datamodule = StreamedFileData(
                streamed_path(args), *file[1:], **options, source=args.data, row_cache=not args.no_row_cache
            )
        else:
            datamodule = FileData(*file, **options)
    else:
        synthetic = dict(
            true_w=true_w(args),
            true_b=args.true_b if args.true_b is not None else 0.0 if args.no_bias else 4.2,
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
        if args.streaming:
            datamodule = StreamedData(**synthetic)
        else:
            datamodule = SyntheticData(**synthetic, outliers=args.outliers, outlier_scale=args.outlier_scale)
    model = make_model(  # the book's from-scratch module, or its concise one, with the layers (linreg/stack.py)
        args.implementation,
        num_inputs=datamodule.num_inputs,
        lr=args.lr,
        init_std=args.init_std,
        loss=args.loss,
        huber_delta=args.huber_delta,
        weight_decay=args.weight_decay,
        bias=not args.no_bias,
        **{name: getattr(args, name) for name in ("lr_schedule", "lr_step_size", "lr_gamma", "power_t")},
    )
    # The bar only where someone watches it: redirected to a file, its redraws would be noise in the log.
    progress_bar = sys.stderr.isatty() if progress_bar is None else progress_bar
    bar = [ProgressBar(evaluation_bars=args.verbose)] if progress_bar else []
    step_checkpoint = StepCheckpoint(
        args.checkpoint_every_n_steps, args.checkpoint_every_seconds, settings=vars(args), signals=signals
    )
    try:  # Lightning judges the flags it is given (a strategy, more devices than there are): before any folder
        trainer = L.Trainer(
            accelerator=args.accelerator,
            devices=args.devices,
            strategy=args.strategy,
            num_nodes=args.num_nodes,
            precision=args.precision,
            max_epochs=args.max_epochs,
            max_steps=args.max_steps,
            callbacks=[
                ModelCheckpoint(save_last=True, save_top_k=0),  # last.ckpt at the end of fit
                BookReport(args.closed_form),
                *bar,
                step_checkpoint,  # last-step.ckpt every N steps, S seconds, and on a stop signal: exact resumes
                *early_stopping_callbacks(args.early_stopping),  # and the best model by val/loss
                Timer(),  # no limit: the training's own seconds, without setup, for summary.json
            ],
            plugins=[AtomicCheckpointIO()],  # a checkpoint is whole or is the previous one, whatever happens
            log_every_n_steps=args.log_every_n_steps,
            enable_progress_bar=bool(bar),
            num_sanity_val_steps=0,
            use_distributed_sampler=False,  # MinibatchSampler already has the book's semantics
            enable_model_summary=False,
            profiler=NoProfiler(),  # Lightning's default records nothing either, at a cost per hook call
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError, ImportError) as e:
        raise UsageError(str(e).strip().splitlines()[0]) from None
    run_dir = inherited_run_dir()  # a DDP rank: the folder its launching process claimed
    if run_dir is None and launching_process():
        run_dir = claim(args.logdir)
    # no placeholder hp_metric of -1 at step 0: the HPARAMS tab gets the run's final metrics (log_hparams)
    trainer.logger = MergedTensorBoardLogger(
        args.logdir,
        name="",
        version=int(run_dir.name.removeprefix("version_")) if run_dir else None,
        default_hp_metric=False,
    )
    return datamodule, model, trainer


def run(args: argparse.Namespace, checkpoint: dict | None = None, signals: StopSignals | None = None) -> Path:
    """Fit and report; under DDP every rank runs this and returns the run folder."""
    handing_down = inherited_run_dir() is None
    try:
        return fit_and_report(args, checkpoint, signals)
    except MisconfigurationException as e:  # Lightning's word for bad flags (--devices 3 on 2 CPUs, ...)
        raise UsageError(str(e).strip().splitlines()[0]) from None
    finally:
        if handing_down:  # the next run of this process claims its own folder
            os.environ.pop(ENV, None)
        # Lightning leaves the DDP process group up after fit; left to interpreter exit, gloo's threads can
        # abort the process ("terminate called without an active exception").
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def fit_and_report(args: argparse.Namespace, checkpoint: dict | None, signals: StopSignals | None) -> Path:
    datamodule, model, trainer = build(args, signals=signals)  # reads a data file: can take a while
    try:
        if signals is not None:
            signals.check()  # Ctrl-C while the data was read or the Trainer built: nothing to save yet
        run_dir = train_and_report(args, checkpoint, datamodule, model, trainer)
    except BaseException:
        if launching_process():  # a run that failed before it wrote anything leaves no empty folder
            release(trainer.logger.log_dir)
        raise
    if signals is not None and signals.received is not None and trainer.is_global_zero:  # during the report
        name = signal.Signals(signals.received).name
        print(f"{name}: received after training ended; the run's report is complete in {run_dir}")
        sys.exit(128 + signals.received)
    return run_dir


def train_and_report(args: argparse.Namespace, checkpoint: dict | None, datamodule, model, trainer) -> Path:
    if launching_process():  # DDP ranks that Lightning starts find the folder in their environment
        os.environ[ENV] = str(trainer.logger.log_dir)
    if isinstance(datamodule, FileData) and checkpoint is not None:
        datamodule.check_resume(checkpoint.get(type(datamodule).__qualname__, {}))
    largest_label_fits(datamodule, args.precision)  # else the loss overflows whatever the learning rate
    processes = (
        f", {trainer.world_size} processes ({type(trainer.strategy).__name__})" if trainer.world_size > 1 else ""
    )
    print_rank_zero(f"seed {args.seed}, device {trainer.strategy.root_device}{processes}")
    if args.streaming and args.data is not None:
        print_rank_zero(
            f"streaming: {args.data}, {datamodule.num_train} training rows and {datamodule.num_val} held out, a "
            "window of row groups at a time; the loss after each epoch is measured on the held-out rows"
        )
    elif args.streaming:
        print_rank_zero(
            f"streaming: {args.num_examples} examples, never stored; the loss after each epoch is measured "
            f"on a fixed held-out stream of {datamodule.hparams.num_val} examples, not on the training set"
        )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=args.resume, weights_only=True if args.resume else None)
    fit_seconds = time.perf_counter() - start
    step_checkpoint = next(c for c in trainer.callbacks if isinstance(c, StepCheckpoint))
    if step_checkpoint.stopped_by is not None:
        return interrupted(trainer, model, datamodule, step_checkpoint, fit_seconds, args)
    diverged = model.diverged_at_step is not None
    if model.evaluated_at_step != trainer.global_step and not diverged:  # --max-steps stopped it mid-epoch
        trainer.validate(model, datamodule=datamodule, verbose=False, weights_only=True)
        if trainer.is_global_zero:  # no progress bar is active any more: a plain print
            print(f"step {trainer.global_step}, {losses_line(trainer.callback_metrics)}")
    run_dir = Path(trainer.log_dir)  # a broadcast from rank 0 under DDP: every rank asks, once
    if not trainer.is_global_zero:
        return run_dir

    solution = next(c for c in trainer.callbacks if isinstance(c, BookReport)).solution
    summary = run_summary(
        trainer, model, datamodule, run_dir, fit_seconds, vars(args), solution, train_seconds(trainer)
    )
    # last.ckpt: resume or predict from it; none for a diverged run, whose parameters are no model
    summary["checkpoint"] = None if diverged else trainer.checkpoint_callback.last_model_path
    best = best_checkpoint(trainer)  # --early-stopping: the model of the best val/loss
    summary["best_checkpoint"] = best.best_model_path or None if best is not None and not diverged else None
    write_summary(summary, run_dir)
    log_hparams(trainer, summary)
    if diverged:
        bound = None if solution is None else conditioning(model, solution, datamodule.examples_per_batch())[1]
        print(f"{program('train.py')}: error: {divergence_line(model, args.lr, bound, run_dir)}", file=sys.stderr)
        sys.exit(1)
    print_results(summary, model, datamodule, args, solution is not None)
    if (line := early_stopping_line(trainer)) is not None:
        print(line)
    print(f"run folder: {run_dir}")
    return run_dir


def interrupted(trainer, model, datamodule, step_checkpoint: StepCheckpoint, fit_seconds: float, args) -> Path:
    """SIGINT or SIGTERM stopped training at an update boundary, where `step_checkpoint` saved last-step.ckpt: say
    how to resume, write summary.json, and exit 128 + the signal's number (130, 143) like a shell does."""
    run_dir = Path(trainer.log_dir)
    if trainer.is_global_zero:
        summary = run_summary(
            trainer, model, datamodule, run_dir, fit_seconds, vars(args), None, train_seconds(trainer)
        )
        step, path = step_checkpoint.stopped_at, step_checkpoint.path
        summary |= {"status": f"interrupted at step {step}", "checkpoint": str(path)}
        write_summary(summary, run_dir)
        name = signal.Signals(step_checkpoint.stopped_by).name
        print(f"{name}: stopped at step {step}; resume with: linreg-train --resume {path}")
    sys.exit(128 + step_checkpoint.stopped_by)


def train_seconds(trainer: L.Trainer) -> float | None:
    """Seconds from the start of training to its end in this run (Lightning's Timer): the epochs and the
    evaluations after them, not the setup before (reading and standardizing data, the stream's pass); None
    where training did not end."""
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
    start, end = timer.start_time("train"), timer.end_time("train")
    return None if start is None or end is None else end - start
