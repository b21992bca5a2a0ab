"""Every use of a framework internal in this project, in one place: Lightning's loop state and hook
bookkeeping, and one method of torch's SummaryWriter.

    from linreg import lightning_internals as internals
    internals.batches_done_this_epoch(trainer)

None of these is public API, and a release may move or rename any of them. Each is reached through a
function here that names it and raises `FrameworkMoved` (naming the internal and the releases checked) when
it is gone, rather than letting resume or a speed-up go wrong without a word; and each has a test in
tests/test_lightning_internals.py that fails the same way. The plain core (functions.py, model.py, data.py,
sampler.py) uses none of them: only the layers do (steps per execution, the hook savings, the merged
TensorBoard events, the progress bar).

Checked on Lightning 2.6.0 and 2.6.6 with torch 2.13 (pyproject.toml pins lightning to 2.6.x for this).
"""

CHECKED = "Lightning 2.6.0 and 2.6.6, torch 2.13"

# The attribute Lightning sets on the module around every hook call ("training_step", ...) to check where
# self.log is called from. linreg.fast_hooks sets it without nn.Module.__setattr__'s checks.
HOOK_NAME_ATTRIBUTE = "_current_fx_name"


class FrameworkMoved(RuntimeError):
    """A framework internal this project leans on is not where it was."""

    def __init__(self, internal: str, why: str) -> None:
        super().__init__(f"{internal} is gone or moved ({why}); linreg was checked on {CHECKED}")


def _batch_progress(trainer):
    try:
        return trainer.fit_loop.epoch_loop.batch_progress
    except AttributeError:
        raise FrameworkMoved("trainer.fit_loop.epoch_loop.batch_progress", "the epoch's batch count") from None


def batches_done_this_epoch(trainer) -> int:
    """Lightning's count of the epoch's training batches processed: the blocks of K updates it has finished.

    Why: an exact mid-epoch resume must tell Lightning's count and the sampler's position apart (a
    checkpoint taken inside a block counts that block as not yet processed), and nothing public says it."""
    try:
        return _batch_progress(trainer).current.processed
    except AttributeError:
        raise FrameworkMoved("batch_progress.current.processed", "the epoch's batch count") from None


def restart_batch_count(trainer) -> None:
    """Set Lightning's count of the epoch's batches back to 0.

    Why: resuming a checkpoint of a run that --max-steps stopped mid-epoch, Lightning 2.6 carries the
    stopped epoch's count into the next epoch when max_steps is set, and would end that epoch early."""
    try:
        _batch_progress(trainer).reset_on_run()
    except AttributeError:
        raise FrameworkMoved("batch_progress.reset_on_run", "restarting the epoch's batch count") from None


def resumed_mid_epoch(trainer) -> bool:
    """Whether this fit resumed a checkpoint taken in the middle of an epoch.

    Why: Lightning then skips `on_train_epoch_start`, which gives the progress bar its total; the bar
    calls it itself."""
    try:
        return bool(trainer.fit_loop.restarted_mid_epoch)
    except AttributeError:
        raise FrameworkMoved("trainer.fit_loop.restarted_mid_epoch", "resuming mid-epoch") from None


def tensorboard_file_writer(summary_writer):
    """torch's SummaryWriter's event file writer, opened (or reopened after close) on first use.

    Why: `add_scalar` writes one event per number; writing one event for all the numbers of a step goes
    through the same writer (`add_summary`), which SummaryWriter reaches only through this method."""
    try:
        get = summary_writer._get_file_writer
    except AttributeError:
        raise FrameworkMoved("SummaryWriter._get_file_writer", "writing merged TensorBoard events") from None
    return get()
