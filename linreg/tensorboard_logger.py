"""TensorBoard logging through Lightning's TensorBoardLogger: one event per write, flushed on a timer.

    trainer = L.Trainer(logger=MergedTensorBoardLogger("lightning_logs", name=""))

Two costs of the stock logger, each larger than the book's whole SGD step at batch 10:
- Lightning calls `logger.save()` after every write of step metrics; TensorBoardLogger's `save` flushes
  the event file and checks the file system for hparams.yaml. TensorBoard's own SummaryWriter
  flushes on a timer (`flush_secs`); `save` here does the same. Nothing is dropped: every event is queued
  as before, `finalize` (end of fit, or an error) flushes and closes the file, and at most `flush_secs` of
  events sit in memory meanwhile.
- `log_metrics` writes each metric with `add_scalar`: one event, one record and one checksum per number.
  Here the metrics of one call go out as one event whose summary holds one value per tag, as
  TensorFlow's merged summaries did, an order of magnitude cheaper per number (docs/performance.md).
  TensorBoard reads every value of an event, so the dashboards show exactly the same scalars
  (`simple_value`, as `add_scalar` writes them).
"""

import math
import time
from collections.abc import Mapping

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary

from linreg.lightning_internals import tensorboard_file_writer


class MergedTensorBoardLogger(TensorBoardLogger):
    def __init__(self, *args, flush_secs: float = 2.0, prefix: str = "", **kwargs) -> None:
        super().__init__(*args, flush_secs=flush_secs, prefix=prefix, **kwargs)
        self.flush_secs = flush_secs
        self.tag_prefix = f"{prefix}{self.LOGGER_JOIN_CHAR}" if prefix else ""
        self.last_save = -float("inf")

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if any(isinstance(value, Mapping) for value in metrics.values()):  # add_scalars' groups: as Lightning does
            return super().log_metrics(metrics, step)
        values = [Summary.Value(tag=self.tag_prefix + tag, simple_value=float(value)) for tag, value in metrics.items()]
        # add_scalar's own path to the file: reopens a closed file
        tensorboard_file_writer(self.experiment).add_summary(Summary(value=values), step)

    def save(self) -> None:
        now = time.monotonic()
        if now - self.last_save >= self.flush_secs:
            self.last_save = now
            super().save()


def log_hparams(trainer: L.Trainer, summary: dict) -> None:
    """TensorBoard's HPARAMS tab: every flag of the run, and its final metrics at its last step."""
    metrics = {"hparams/train_loss": summary["train_loss"], "hparams/val_loss": summary["val_loss"]}
    if summary["true_w"] is not None and summary["w"] is not None:
        metrics["hparams/w_error"] = math.dist(summary["w"], summary["true_w"])
    metrics["hparams/excess_loss"] = summary["excess_loss"]
    if summary["status"] != "ok":  # diverged: the metrics that say so
        metrics = {"hparams/train_loss": math.nan}
    metrics = {name: value for name, value in metrics.items() if value is not None}
    for logger in trainer.loggers:
        logger.log_hyperparams(summary["hparams"], metrics=metrics, step=trainer.global_step)
        logger.finalize("success")  # fit closed the event file; log_hyperparams reopened it: flush and close
