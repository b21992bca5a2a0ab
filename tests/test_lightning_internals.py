"""Each framework internal that linreg/lightning_internals.py reaches, checked where the project relies on it.

A failure here names the internal: a Lightning (or torch) release moved it, and exact resume, the progress
bar or a speed-up would otherwise go wrong without a word. See docs/design.md for what each is for.
"""

import types
from pathlib import Path

import lightning as L
import pytest
from torch.utils.tensorboard import SummaryWriter

from linreg import lightning_internals as internals
from linreg.fault_tolerance import StepCheckpoint
from linreg.stack import Scratch, SyntheticData


class Probe(L.Callback):
    """Reads the internals at the moments the project reads them."""

    def __init__(self):
        self.batches_done, self.hook_names, self.restarted = [], [], []

    def on_train_start(self, trainer, module):
        self.restarted.append(internals.resumed_mid_epoch(trainer))

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.batches_done.append((batch_idx, internals.batches_done_this_epoch(trainer)))


class NamedScratch(Scratch):
    def training_step(self, batch, batch_idx):
        self.trainer.callbacks[0].hook_names.append(getattr(self, internals.HOOK_NAME_ATTRIBUTE, None))
        return super().training_step(batch, batch_idx)


def fit(make_trainer, **kwargs):
    probe, model = Probe(), NamedScratch()
    trainer = make_trainer(callbacks=[probe], limit_val_batches=0, **kwargs)
    trainer.fit(model, datamodule=SyntheticData(num_examples=100, num_val=0, steps_per_execution=3))
    return probe, trainer


def test_batch_progress_counts_the_epochs_finished_batches(make_trainer):
    # linreg.block_loading reads it as "blocks done" while a block trains: 0, 1, 2, ... in each epoch
    probe, _ = fit(make_trainer, max_epochs=2)
    assert probe.batches_done == [(i, i) for i in range(4)] * 2, "batch_progress.current.processed moved"


def test_batch_progress_restarts_at_zero(make_trainer):
    _, trainer = fit(make_trainer, max_epochs=1)
    assert internals.batches_done_this_epoch(trainer) == 4
    internals.restart_batch_count(trainer)
    assert internals.batches_done_this_epoch(trainer) == 0, "batch_progress.reset_on_run no longer restarts it"


def test_restarted_mid_epoch_tells_a_mid_epoch_resume(make_trainer, tmp_path):
    probe = Probe()  # saved from inside the training step at update 5, in the epoch's second block
    trainer = make_trainer(callbacks=[probe, StepCheckpoint(every_n_steps=5, dirpath=tmp_path)], max_steps=7)
    trainer.fit(NamedScratch(), datamodule=SyntheticData(num_examples=100, num_val=0, steps_per_execution=3))
    path = tmp_path / "last-step.ckpt"
    resumed = Probe()
    make_trainer(callbacks=[resumed], max_epochs=1, limit_val_batches=0).fit(
        NamedScratch(),
        datamodule=SyntheticData(num_examples=100, num_val=0, steps_per_execution=3),
        ckpt_path=path,
        weights_only=True,
    )
    assert probe.restarted == [False] and resumed.restarted == [True], "fit_loop.restarted_mid_epoch moved"


def test_the_hook_name_is_set_around_training_step(make_trainer):
    probe, _ = fit(make_trainer, max_epochs=1)
    assert set(probe.hook_names) == {"training_step"}, "Lightning no longer sets _current_fx_name"


def test_the_summary_writer_reopens_its_file_writer(tmp_path):
    writer = SummaryWriter(tmp_path)
    first = internals.tensorboard_file_writer(writer)
    assert hasattr(first, "add_summary"), "SummaryWriter._get_file_writer no longer gives a FileWriter"
    writer.close()
    assert internals.tensorboard_file_writer(writer) is not None  # reopened after close, as add_scalar does
    writer.close()


@pytest.mark.parametrize(
    ("reach", "internal"),
    [
        (internals.batches_done_this_epoch, "batch_progress"),
        (internals.restart_batch_count, "batch_progress"),
        (internals.resumed_mid_epoch, "restarted_mid_epoch"),
        (internals.tensorboard_file_writer, "_get_file_writer"),
    ],
)
def test_a_moved_internal_fails_loudly_and_names_itself(reach, internal):
    nothing = types.SimpleNamespace(fit_loop=types.SimpleNamespace(epoch_loop=types.SimpleNamespace()))
    with pytest.raises(internals.FrameworkMoved, match=internal):
        reach(nothing)


def test_the_plain_core_names_no_internal():
    # the files a learner opens use Lightning's public API only: no name of an internal, and no reach into
    # linreg.lightning_internals (whose own docstring lists them all)
    root = Path(internals.__file__).parent
    names = ("fit_loop", "batch_progress", "restarted_mid_epoch", internals.HOOK_NAME_ATTRIBUTE, "_get_file_writer")
    for core in ("functions.py", "sampler.py", "model.py", "data.py"):
        text = (root / core).read_text()
        assert "lightning_internals" not in text
        assert not [name for name in names if name in text], core
