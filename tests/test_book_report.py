"""BookReport, ProgressBar and the TensorBoard logger: what reaches the loggers and the terminal."""

import json
import math
import re
import time

import lightning as L
import pytest
import torch

import linreg.book_report
from linreg.book_report import BookReport
from linreg.fast_hooks import NoProfiler
from linreg.fault_tolerance import StepCheckpoint
from linreg.figures import read_scalars
from linreg.progress_bar import ProgressBar
from linreg.stack import Scratch, SyntheticData
from tests.conftest import RecordingLogger, command


class BarWatcher(L.Callback):
    """After each training batch, notes how far the progress bar has been drawn."""

    def __init__(self):
        self.drawn = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.drawn.append(trainer.progress_bar_callback.train_progress_bar.n)


@pytest.mark.parametrize(("min_interval", "expected"), [(0.0, list(range(1, 11))), (3600.0, [1] * 9 + [10])])
def test_progress_bar_redraws_at_most_every_min_interval_and_at_epoch_end(make_trainer, min_interval, expected):
    watcher = BarWatcher()
    trainer = make_trainer(
        max_epochs=1, limit_val_batches=0, enable_progress_bar=True, callbacks=[ProgressBar(min_interval), watcher]
    )
    trainer.fit(Scratch(), datamodule=SyntheticData(num_examples=100, num_val=0))
    assert watcher.drawn == expected


def test_progress_bar_counts_sgd_updates_not_blocks(make_trainer):
    watcher = BarWatcher()
    trainer = make_trainer(
        max_epochs=1, limit_val_batches=0, enable_progress_bar=True, callbacks=[ProgressBar(0.0), watcher]
    )
    dm = SyntheticData(num_examples=100, num_val=0, steps_per_execution=4)  # blocks of 4, 4, 2
    trainer.fit(Scratch(), datamodule=dm)
    assert trainer.progress_bar_callback.train_progress_bar.total == 10  # updates in the epoch
    assert watcher.drawn == [4, 8, 10]  # after each block, the updates done so far


class HookWatcher(L.Callback):
    """Records each per-update hook Lightning calls, with the hook name the module holds meanwhile."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.seen.append(("on_before_backward", pl_module._current_fx_name))

    def on_after_backward(self, trainer, pl_module) -> None:
        self.seen.append(("on_after_backward", pl_module._current_fx_name))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.seen.append(("on_before_optimizer_step", pl_module._current_fx_name))


def test_the_cheaper_hook_bookkeeping_still_calls_every_hook_under_its_name(make_trainer):
    watcher = HookWatcher()
    trainer = make_trainer(max_steps=7, profiler=NoProfiler(), callbacks=[watcher])
    model = Scratch()  # sets _current_fx_name without nn.Module's checks (FastHookName)
    trainer.fit(model, datamodule=SyntheticData(num_examples=100, steps_per_execution=3))
    hooks = ["on_before_backward", "on_after_backward", "on_before_optimizer_step"]
    # 7 updates, 3 hooks each, in order, each seeing its own name: Lightning reads the name back, e.g. to
    # check where self.log is called from, so a stale one would misfire
    assert watcher.seen == [(hook, hook) for _ in range(7) for hook in hooks]


def test_parameter_trajectories_thin_out_with_many_features_but_errors_do_not(make_trainer):
    logger = RecordingLogger()
    dm = SyntheticData(true_w=None, num_features=40, num_examples=500, num_val=0)
    trainer = make_trainer(max_epochs=1, log_every_n_steps=5, logger=logger, callbacks=[BookReport()])
    trainer.fit(Scratch(num_inputs=40), datamodule=dm)
    every = 5 * math.ceil(41 / 16)  # 41 parameters: written every 3 x log_every_n_steps
    assert [step for step, _ in logger.values("params/w_39")] == [0, *range(every, 50, every), 50]
    assert [step for step, _ in logger.values("params/w_error")] == list(range(0, 51, 5))


def test_book_report_prints_the_books_lines(make_trainer, capsys):
    logger = RecordingLogger()
    trainer = make_trainer(max_epochs=2, logger=logger, callbacks=[BookReport()])
    trainer.fit(Scratch(), datamodule=SyntheticData(num_examples=200, num_val=100))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    printed = [re.fullmatch(r"epoch (\d), loss (\d+\.\d{6}), val loss (\d+\.\d{6})", line).groups() for line in lines]
    assert [epoch for epoch, _, _ in printed] == ["1", "2"]
    # each line's numbers are that epoch's logged metrics, to the 6 decimals printed
    for (_, loss, val_loss), (_, train_logged), (_, val_logged) in zip(
        printed, logger.values("train/epoch_loss"), logger.values("val/loss"), strict=True
    ):
        assert float(loss) == pytest.approx(train_logged, abs=5e-7)
        assert float(val_loss) == pytest.approx(val_logged, abs=5e-7)


def test_step_checkpoint_without_a_model_checkpoint_saves_under_the_root_dir(make_trainer, tmp_path):
    trainer = make_trainer(max_steps=7, limit_val_batches=0, callbacks=[StepCheckpoint(5)])  # checkpointing off
    trainer.fit(Scratch(), datamodule=SyntheticData(num_val=0))
    saved = torch.load(tmp_path / "checkpoints" / "last-step.ckpt", weights_only=True)
    assert saved["global_step"] == 5


def test_the_logger_writes_one_event_per_call_with_the_same_scalars_as_add_scalar(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from linreg.figures import read_scalars
    from linreg.tensorboard_logger import MergedTensorBoardLogger

    writes = [({"train/loss": 0.5, "params/w_0": torch.tensor(2.0), "params/b": -1.25}, 0), ({"train/loss": 0.25}, 10)]
    for logger in (MergedTensorBoardLogger(tmp_path, name="merged"), TensorBoardLogger(tmp_path, name="stock")):
        for metrics, step in writes:
            logger.log_metrics(metrics, step)
        logger.finalize("success")
    merged, stock = read_scalars(tmp_path / "merged" / "version_0"), read_scalars(tmp_path / "stock" / "version_0")
    assert merged == stock == {"train/loss": [(0, 0.5), (10, 0.25)], "params/w_0": [(0, 2.0)], "params/b": [(0, -1.25)]}
    (events,) = (tmp_path / "merged" / "version_0").glob("events.out.tfevents.*")
    summaries = [e.summary for e in EventFileLoader(str(events)).Load() if e.HasField("summary")]
    assert [len(s.value) for s in summaries] == [3, 1]  # add_scalar would write four events of one value


def slowly(solve):
    """The closed form, a second late."""

    def late(*args, **kwargs):
        time.sleep(1.0)
        return solve(*args, **kwargs)

    return late


def test_a_closed_form_solved_beside_training_is_the_one_solved_before_it(tmp_path, capsys, monkeypatch):
    # 1000 x 2 is solved before training; with the threshold at 0 µs the same solve runs on a second thread,
    # made to take a second (longer than the two epochs): the evaluations must wait for it. Weight decay: the
    # thread must get the same ridge problem.
    train = command("train")
    args = ["--max-epochs", "2", "--weight-decay", "0.01"]
    runs = {}
    for name, threshold in (("before", linreg.book_report.BACKGROUND_US), ("beside", 0)):
        monkeypatch.setattr(linreg.book_report, "BACKGROUND_US", threshold)
        if name == "beside":
            monkeypatch.setattr(linreg.book_report, "closed_form", slowly(linreg.book_report.closed_form))
        run_dir = train.run(["--logdir", str(tmp_path / name), *args])
        summary = json.loads((run_dir / "summary.json").read_text())
        runs[name] = summary, capsys.readouterr().out, read_scalars(run_dir)
    (before, out_before, tags_before), (beside, out_beside, tags_beside) = runs["before"], runs["beside"]
    assert beside["closed_form"] == before["closed_form"] and beside["excess_loss"] == before["excess_loss"]
    for tag in ("reference/closed_form_loss", "train/excess_loss"):  # after each epoch, in both
        assert len(tags_beside[tag]) == 2 and tags_beside[tag] == tags_before[tag]
    assert (beside["w"], beside["b"]) == (before["w"], before["b"])  # training is untouched by the thread
    assert out_before.count("conditioning:") == out_beside.count("conditioning:") == 1
