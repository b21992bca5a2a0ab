"""Steps per execution: one Lightning batch carries K minibatches, and the module takes K SGD updates on it.

    class Scratch(StepsPerExecution, LinearRegressionScratch): ...     # what linreg/stack.py does
    trainer.fit(Scratch(), datamodule=...)    # a DataModule with BlockLoading (linreg/block_loading.py)

Lightning spends Python around every batch it runs (its loop's bookkeeping, every callback's hooks),
several times the book's whole update at batch 10 (docs/performance.md). Keras's answer is
`steps_per_execution`, and so is this layer's: the loader hands out blocks of K consecutive minibatches of
the book's order (`BlockSampler`), and `training_step` runs the plain module's update, `sgd_step`, on
each in turn. The same updates in the same order on the same numbers: tests/test_oracle.py proves it bit
for bit against the plain core.

What a block changes, and how this layer keeps the meaning per update:
- `batch_idx` and Lightning's `on_train_batch_*` hooks count blocks. What must happen after every update
  (the parameters' trajectories, step checkpoints, the progress bar) is an `UpdateCallback`, whose
  `on_train_update_end` this module calls after each update.
- `train/loss` is written every `log_every_n_steps` updates, straight to the loggers (`self.log` costs more
  than the book's update, per call), with the number of updates as its step; the epoch metrics get the
  same x-axis.
- `max_steps` and divergence stop in the middle of a block, at the update they would stop at with K = 1.
"""

import math

import lightning as L
import torch

AUTO_BLOCK_EXAMPLES, AUTO_MAX_STEPS = 16384, 100
# A run whose train/loss has grown this many times over its first value has diverged, though no number is
# inf yet: SGD that converges, even noisily, never climbs this far above where it started.
GROWTH_LIMIT = 1000.0


def auto_steps_per_execution(batch_size: int) -> int:
    """The default K: as many updates as fit in a block of 16,384 examples, at most 100 and at least 1.

    At batch 10 that is 100: Lightning's per-batch cost is then shared by 100 updates. At batch 1000 it is
    16, and a block stays small enough (a 6.5 MB gather at 100 features, or about one window of the
    streamed data) to stay in cache; at batch 16,384 and above it is 1, where the update's own arithmetic
    dwarfs Lightning's cost anyway.
    """
    return max(1, min(AUTO_MAX_STEPS, AUTO_BLOCK_EXAMPLES // batch_size))


class UpdateCallback(L.Callback):
    """A callback with one more hook, called by `StepsPerExecution` after every SGD update."""

    def on_train_update_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass


class StepsPerExecution:
    """A mixin for LinearRegressionScratch and its subclasses: a training batch is (X, y, lengths), the K
    minibatches of a block concatenated, and `training_step` takes one `sgd_step` on each."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The minibatch losses since the last write of train/loss, kept on the device and added up at the
        # write: one detach per update, and nothing waits for the device.
        self.losses: list[torch.Tensor] = []  # each (batch_size, 1)
        self.train_loss: float | None = None  # the last value written, shown by the progress bar
        self.update_callbacks: list[UpdateCallback] = []  # set when training starts
        self.diverged_at_step: int | None = None  # set when the loss diverges: training stops
        self.diverged_growth: tuple[float, float] | None = None  # (first, last) train/loss, when it grew
        self.first_train_loss: float | None = None  # the run's first train/loss: what growth is measured from
        self.lr: float | None = None  # the learning rate of the last update (linreg/lr_schedules.py)
        self.evaluated_at_step = -1  # the global_step of the last epoch-end evaluation

    def on_train_start(self) -> None:
        self.update_callbacks = [c for c in self.trainer.callbacks if isinstance(c, UpdateCallback)]
        self.lr = self.optimizers().param_groups[0]["lr"]  # the next update's; only a schedule changes it
        if self.global_step == 0:  # train/lr starts where the first update is taken, whatever the schedule
            for logger in self.loggers:
                logger.log_metrics({"train/lr": self.lr}, step=0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, list[int]], batch_idx: int) -> None:
        X_block, y_block, lengths = batch  # (sum of lengths, num_inputs), (sum of lengths, 1), K lengths
        optimizer = self.optimizers()  # looked up once a block: Lightning's wrapper of BookSGD
        schedule = self.lr_schedulers()  # None unless --lr-schedule
        for X, y in zip(X_block.split(lengths), y_block.split(lengths), strict=True):
            if self.trainer.should_stop or 0 <= self.trainer.max_steps <= self.global_step:
                break  # diverged, or max_steps reached in the middle of the block: exactly as with K = 1
            self.losses.append(self.sgd_step(X, y, optimizer))
            if schedule is not None:  # the update's rate, kept before the schedule moves on: not read per update else
                self.lr = self.step_lr(optimizer, schedule)
            if self.global_step % self.trainer.log_every_n_steps == 0:
                self.write_train_loss()
            for callback in self.update_callbacks:
                callback.on_train_update_end(self.trainer, self)

    def write_train_loss(self) -> None:
        """Write the mean minibatch loss since the last write as `train/loss`, straight to the loggers.

        The price of skipping `self.log`: `train/loss` is not in `trainer.callback_metrics` (monitor
        `train/epoch_loss` or `val/loss` instead). The x-axis is the number of updates done before the last
        of these minibatches, Lightning's convention for step metrics.
        """
        # One host sync per write, not per step, for the loss and for a sum of the parameters: inf or nan
        # there means divergence. Under DDP the loss is averaged over the processes (they meet here anyway),
        # so that every process decides the same and stops at the same step: one alone would hang the job.
        losses = torch.cat(self.losses)  # (examples since the last write, 1)
        self.losses.clear()
        values = torch.stack([losses.mean(), self.w.sum() + self.b.sum()])  # (2,)
        if self.trainer.world_size > 1:
            values = self.trainer.strategy.reduce(values, reduce_op="mean")
        loss, parameters = values.tolist()
        self.train_loss = loss
        for logger in self.loggers:
            logger.log_metrics({"train/loss": loss, "train/lr": self.lr}, step=self.global_step - 1)
        if not (math.isfinite(loss) and math.isfinite(parameters)):
            self.stop_if_diverged(math.inf)  # inf or nan
        elif self.first_train_loss is None:
            self.first_train_loss = loss
        elif loss > GROWTH_LIMIT * self.first_train_loss and self.diverged_at_step is None:
            self.diverged_growth = (self.first_train_loss, loss)  # finite, but far past where it started
            self.stop_if_diverged(math.inf)

    def stop_if_diverged(self, value: float) -> None:
        """A value gone inf or nan (too large a learning rate) stops training; what was logged stays."""
        if not math.isfinite(value) and self.diverged_at_step is None:
            self.diverged_at_step = self.global_step
            self.trainer.should_stop = True

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # a resumed run measures growth from where this one started, not from its own (smaller) first loss
        checkpoint["first_train_loss"] = self.first_train_loss

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.first_train_loss = checkpoint.get("first_train_loss")

    def evaluation(self) -> dict[str, torch.Tensor]:
        values = super().evaluation()
        loss = values.get("train/epoch_loss", values.get("val/loss"))
        if loss is not None:
            self.stop_if_diverged(float(loss))  # combined across processes: the same on each
            values["hp_metric"] = values.get("val/loss", loss)  # TensorBoard's HPARAMS tab
        # Lightning counts batches for the x-axis of epoch metrics, blocks here: a logged "step" replaces
        # it. Put them at the number of SGD updates they were measured after, as train/loss and params/*.
        values["step"] = float(self.global_step)
        self.evaluated_at_step = self.global_step
        return values
