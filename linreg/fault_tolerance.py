"""Runs that survive faults: checkpoints that are never half-written, taken often, and on a stop signal.

    trainer = L.Trainer(plugins=[AtomicCheckpointIO()], callbacks=[StepCheckpoint(every_seconds=60)])

- `AtomicCheckpointIO`: Lightning's checkpoint writer, made atomic. A checkpoint goes to a temporary file
  in its own folder, is flushed to the disk, and is then renamed over the old one (`os.replace`): a kill,
  a power loss or a full disk in the middle of a write leaves the previous checkpoint whole.
- `StepCheckpoint`: `last-step.ckpt` after every N-th SGD update, every S seconds, and when SIGINT
  (Ctrl-C) or SIGTERM (`kill`, a scheduler's preemption) asks the run to stop. Always saved from inside
  the training step, between two updates, so that resuming it is exact (see `StepCheckpoint`).
- The signals themselves are the command's (linreg/stop_signals.py): `StepCheckpoint` reads the
  `StopSignals` that `linreg-train`'s main() installed, and installs none itself.

Under DDP the ranks must save and stop at the same step (saving is a collective: a rank saving alone would
hang the job), yet a clock and a signal are each rank's own. So the decisions that depend on them are
agreed every `log_every_n_steps` updates, when the ranks already meet (`train/loss` writes), with one
all-reduce: a signal that reached one rank stops every rank at the same step.
"""

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins import TorchCheckpointIO

from linreg import __version__
from linreg.checkpoint import atomic_save
from linreg.steps_per_execution import UpdateCallback
from linreg.stop_signals import StopSignals


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer through `linreg.checkpoint.atomic_save`: all or nothing."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        atomic_save(checkpoint, path)


class StepCheckpoint(UpdateCallback):
    """`last-step.ckpt` after every `every_n_steps`-th update, every `every_seconds`, and on a stop signal.

    Into `dirpath`; by default the ModelCheckpoint's folder, or `<log_dir>/checkpoints` without one.
    Always from inside the training step (`on_train_update_end`, which the module calls after each update),
    the last step of an epoch too: Lightning restores a checkpoint taken there as "this block still to
    run", and the sampler's saved position gives it the block's remaining minibatches, possibly none.
    (Saved after the block instead, at an epoch's last step, Lightning 2.6 restores it as the next epoch
    with all its batches done, and skips that epoch.) A file of its own: ModelCheckpoint's `last.ckpt`,
    written when fit ends, records an epoch stopped by max_steps as finished.

    After a stop signal, `stopped_by` is its number and `stopped_at` the step saved; training ends there.
    `settings` (the command line's flags) go into every checkpoint of the run as `checkpoint["linreg"]`.
    """

    def __init__(
        self,
        every_n_steps: int = 0,
        every_seconds: float = 0,
        dirpath: str | Path | None = None,
        settings: dict[str, Any] | None = None,
        signals: StopSignals | None = None,
    ) -> None:
        self.settings = settings  # the run's flags, in every checkpoint of the run (ModelCheckpoint's too)
        self.every_n_steps = every_n_steps
        self.every_seconds = every_seconds
        self.dirpath = dirpath
        self.signals = signals  # the command's handlers; None: no signal stops the run here
        self.last_save = time.monotonic()
        self.stopped_by: int | None = None
        self.stopped_at: int | None = None
        self.path: Path | None = None  # the newest checkpoint this callback wrote

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if self.settings is not None:  # `linreg-train --resume CKPT` alone continues the run with these
            checkpoint["linreg"] = {"version": __version__, "flags": self.settings}
            # a diverged run's parameters are no model: predict and resume refuse them (linreg.checkpoint)
            checkpoint["linreg"]["diverged_at_step"] = getattr(pl_module, "diverged_at_step", None)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last_save = time.monotonic()
        if self.signals is not None:  # training begins: a signal now stops at an update boundary
            self.signals.hold()  # after Lightning's own SIGTERM handler (set in fit's set-up): replaces it

    def on_train_update_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        save = self.every_n_steps > 0 and step % self.every_n_steps == 0
        stop = None
        if trainer.world_size == 1 or step % trainer.log_every_n_steps == 0:  # DDP: where the ranks meet
            stop = self.signals.received if self.signals is not None else None
            late = time.monotonic() - self.last_save >= self.every_seconds > 0
            if trainer.world_size > 1:  # agree: the largest signal number and any rank's clock
                flags = torch.tensor([stop or 0, int(late)], device=pl_module.device)
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
                stop, late = int(flags[0]) or None, bool(flags[1])
            save = save or late or stop is not None
        if save:
            self.save(trainer)
        if stop is not None:
            self.stopped_by, self.stopped_at = stop, step
            trainer.should_stop = True

    def save(self, trainer: L.Trainer) -> None:
        if self.dirpath is None:  # here, not in setup: ModelCheckpoint sets its dirpath in its own setup,
            # which can run after this callback's. Every rank gets here at the same step (log_dir broadcasts).
            checkpoint = trainer.checkpoint_callback
            root = Path(trainer.log_dir or trainer.default_root_dir)
            self.dirpath = checkpoint.dirpath if checkpoint else root / "checkpoints"
        self.path = Path(self.dirpath) / "last-step.ckpt"
        trainer.save_checkpoint(self.path)
        self.last_save = time.monotonic()
