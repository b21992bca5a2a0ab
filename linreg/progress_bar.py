"""The progress bar: Lightning's tqdm bar on stderr, counting SGD updates and redrawn at most every 0.1 s.

    trainer = L.Trainer(callbacks=[ProgressBar()])     # linreg-train adds it when stderr is a terminal

One bar: the epoch-end evaluations get none unless asked (`evaluation_bars=True`, `linreg-train --verbose`).
The bar goes to stderr, as tqdm's own default does, and the book's lines to stdout: `linreg-train >
run.log` keeps the report clean, and tqdm clears the bar before each line so that a terminal shows both.
"""

import math
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from linreg import lightning_internals as internals
from linreg.block_loading import BlockSampler
from linreg.steps_per_execution import UpdateCallback


class ProgressBar(TQDMProgressBar, UpdateCallback):
    """Lightning's tqdm bar counting SGD updates (not Lightning's batches, which carry several: steps per
    execution), redrawn at most every `min_interval` seconds and at the end of each epoch, showing the
    module's last written `train/loss`; tqdm's rate is then updates per second.

    A redraw costs several times the book's whole SGD step at batch 10 (docs/performance.md): drawing
    after every step would make the bar the slowest part of training. Ten redraws a second look continuous.
    """

    def __init__(self, min_interval: float = 0.1, evaluation_bars: bool = False) -> None:
        super().__init__(refresh_rate=1)
        self.min_interval = min_interval
        self.evaluation_bars = evaluation_bars  # Lightning's flashing bars for each epoch-end evaluation
        self.last_draw = -math.inf  # the first update is drawn at once
        self.train_blocks: BlockSampler | None = None

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(
            desc=self.train_description,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def init_validation_tqdm(self) -> Tqdm:
        has_main_bar = self.trainer.state.fn != "validate"  # trainer.validate() has no training bar
        return Tqdm(
            desc=self.validation_description,
            position=2 * self.process_position + has_main_bar,
            disable=self.is_disabled,
            leave=not has_main_bar,
            dynamic_ncols=True,
            file=sys.stderr,
            bar_format=self.BAR_FORMAT,
        )

    def blocks(self) -> BlockSampler | None:
        """The training loader's BlockSampler: its position is the bar's count."""
        sampler = getattr(self.trainer.train_dataloader, "sampler", None)
        return sampler if isinstance(sampler, BlockSampler) else None

    @property
    def total_train_batches(self) -> int | float:
        blocks = self.blocks()
        return super().total_train_batches if blocks is None else blocks.steps

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.train_blocks = self.blocks()  # looked up once (the loader is set up by now), not at every update
        if internals.resumed_mid_epoch(trainer):  # resumed mid-epoch: Lightning skips on_train_epoch_start,
            self.on_train_epoch_start(trainer, pl_module)  # which gives the bar its total and "Epoch N"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        if getattr(pl_module, "train_loss", None) is not None:
            metrics["train/loss"] = f"{pl_module.train_loss:.3g}"
        return metrics

    def on_train_update_end(self, trainer: L.Trainer, pl_module: L.LightningModule, force: bool = False) -> None:
        done = self.train_blocks.position()[0]  # updates of this epoch, those before a resume too
        now = time.monotonic()
        if force or now - self.last_draw >= self.min_interval or done == self.train_blocks.steps:
            self.last_draw = now
            bar = self.train_progress_bar
            if bar is not None and not bar.disable:  # one redraw: Lightning's own hook draws twice (n, then the loss)
                bar.n = done
                bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
                bar.refresh()

    def on_train_batch_end(self, *args) -> None:
        pass  # a block's end: its updates were drawn as they happened

    # The epoch-end evaluation takes a moment and ends in the book's epoch line: no bar of its own unless asked.
    def on_validation_start(self, *args) -> None:
        if self.evaluation_bars:
            super().on_validation_start(*args)

    def on_validation_batch_start(self, *args, **kwargs) -> None:
        if self.evaluation_bars:
            super().on_validation_batch_start(*args, **kwargs)

    def on_validation_batch_end(self, *args, **kwargs) -> None:
        if self.evaluation_bars:
            super().on_validation_batch_end(*args, **kwargs)

    def on_validation_end(self, *args) -> None:
        if self.evaluation_bars:
            super().on_validation_end(*args)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.train_blocks is not None:  # where a stop (--max-steps, divergence) left the epoch, before closing
            self.on_train_update_end(trainer, pl_module, force=True)
        super().on_train_end(trainer, pl_module)
