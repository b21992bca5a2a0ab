"""`--early-stopping PATIENCE`: stop when `val/loss` has not improved for PATIENCE evaluations, keep the best.

    callbacks = early_stopping_callbacks(patience=3)     # Lightning's EarlyStopping and a ModelCheckpoint
    trainer = L.Trainer(callbacks=[*callbacks, ...]); trainer.fit(...)
    print(early_stopping_line(trainer))                  # stopped or not, at which epoch, where the best is

Both are Lightning's own callbacks, monitoring the held-out loss the module logs after each epoch
(`val/loss`, combined across processes): so they work under DDP (every process takes the same decision),
with streamed data (its held-out rows or stream) and across a resume (both keep their state in every
checkpoint). The best model is `checkpoints/best.ckpt` in the run folder, named in summary.json
as `best_checkpoint`; `last.ckpt` stays the model where training stopped.
"""

import os
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint


def early_stopping_callbacks(patience: int | None) -> list[L.Callback]:
    """[EarlyStopping on val/loss, the ModelCheckpoint that keeps its best], or [] for patience None."""
    if patience is None:
        return []
    return [
        EarlyStopping(monitor="val/loss", mode="min", patience=patience, check_on_train_epoch_end=False),
        BestCheckpoint(monitor="val/loss", mode="min", save_top_k=1, filename="best"),  # best.ckpt, replaced
    ]


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, keeping best.ckpt by val/loss, that a resumed run carries on with.

    A resume writes into a new run folder, and ModelCheckpoint then forgets the best score it had (it
    keeps the old folder's path alone), so the first evaluation after the resume would be "best" however
    it scores. Here the best so far is copied into the new folder as it was, with its score: the old
    run's folder is left untouched, and the new one holds the true best."""

    resumed: tuple[str, torch.Tensor] | None = None  # (best_model_path, best_model_score) of the checkpoint

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if state_dict.get("best_model_path") and state_dict.get("best_model_score") is not None:
            self.resumed = (state_dict["best_model_path"], state_dict["best_model_score"])

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.resumed is None or self.best_model_score is not None or not Path(self.resumed[0]).is_file():
            return
        path, score = self.resumed
        target = str(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}")
        if trainer.is_global_zero:  # a new name, then renamed: best.ckpt is whole or absent
            Path(self.dirpath).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target + ".partial")
            os.replace(target + ".partial", target)
        trainer.strategy.barrier()
        self.best_model_path = self.kth_best_model_path = target
        self.best_model_score = self.kth_value = score
        self.best_k_models = {target: score}


def best_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The ModelCheckpoint keeping the best val/loss, if early stopping is on."""
    return next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == "val/loss"), None)


def early_stopping_line(trainer: L.Trainer) -> str | None:
    """One line: whether training stopped early and at which epoch, and where the best model is."""
    stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
    best = best_checkpoint(trainer)
    if stopper is None or best is None or not best.best_model_path:
        return None
    # one evaluation an epoch: the best was wait_count epochs before the last (epochs counted from 1 here)
    last = stopper.stopped_epoch + 1 if stopper.stopped_epoch else trainer.current_epoch
    score = f"val/loss {float(best.best_model_score):.6g}"
    where = f"the best model, epoch {last - stopper.wait_count} ({score}), is {best.best_model_path}"
    if stopper.stopped_epoch:
        patience = f"val/loss did not improve for {stopper.patience} evaluations"
        return f"early stopping: {patience}, so training stopped after epoch {last}; {where}"
    return f"early stopping: not triggered in {last} epochs; {where}"
