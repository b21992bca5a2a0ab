"""The loader side of steps per execution: blocks of K minibatches, and the position an exact resume needs.

    class SyntheticData(BlockLoading, SyntheticRegressionDataModule): ...   # what linreg/stack.py does
    dm = SyntheticData(batch_size=10, steps_per_execution=100)

- `BlockSampler` groups a MinibatchSampler's minibatches K at a time; the minibatches themselves (the
  book's order, the short last batch, the DDP split) are the sampler's, whatever K.
- `GatheredBlocks` gathers a block's K minibatches in one `index_select` and hands the module
  (X, y, lengths); `X.split(lengths)` gives the minibatches back (linreg/steps_per_execution.py).
- `BlockLoading`, a DataModule mixin, puts the two together and saves the sampler's position in every
  checkpoint (the DataModule's `state_dict`), so that a run resumes between any two updates, in the
  middle of a block too. Lightning's own count of the epoch's batches is read and reset through
  linreg.lightning_internals.
"""

import itertools
import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from linreg import lightning_internals as internals
from linreg.errors import ResumeError
from linreg.sampler import MinibatchSampler


def batch_length(batch: torch.Tensor | slice) -> int:
    return len(batch) if isinstance(batch, torch.Tensor) else batch.stop - batch.start


class BlockSampler(Sampler[list]):
    """The minibatches of a MinibatchSampler, K consecutive ones at a time.

    Block b holds the epoch's steps [b·K, (b+1)·K), the last block possibly shorter: len = ceil(steps / K).
    The position, `state_dict()`: the epoch, the minibatches of it trained on (`batches_done`), and the
    blocks Lightning counts as done (`blocks_done`), measured through `progress() -> (global_step, blocks
    processed)` when given, else as handed out. Resuming that epoch, the first block is the rest of the one
    in progress, possibly empty, so that Lightning's count of blocks and this one agree.
    """

    def __init__(
        self,
        sampler: MinibatchSampler,
        steps_per_execution: int = 1,
        progress: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        if steps_per_execution < 1:
            raise ValueError(f"need steps_per_execution >= 1, got {steps_per_execution}")
        self.sampler = sampler
        self.steps_per_execution = steps_per_execution
        self.progress = progress
        self.resume_from: dict[str, int] | None = None
        self.first_step_of_epoch = 0  # the global step at which this epoch's step 0 was (or would have been) taken
        self.handed_out = (0, 0)  # (minibatches, blocks) of the epoch handed out, without `progress`

    @property
    def steps(self) -> int:
        """SGD updates per epoch (on every process)."""
        return len(self.sampler)

    def __len__(self) -> int:
        return math.ceil(self.steps / self.steps_per_execution)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def position(self) -> tuple[int, int]:
        """(minibatches of this epoch trained on, blocks of it Lightning counts as done)."""
        if self.progress is None:
            return self.handed_out
        global_step, blocks = self.progress()
        return global_step - self.first_step_of_epoch, blocks

    def state_dict(self) -> dict[str, int]:
        done, blocks = self.position()
        position = {"epoch": self.sampler.epoch, "batches_done": done, "blocks_done": blocks}
        return position | {"steps_per_execution": self.steps_per_execution}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.resume_from = state

    def start(self) -> tuple[int, int]:
        """(steps done, blocks done) of this epoch when its iteration starts: (0, 0) unless resuming it."""
        state, self.resume_from = self.resume_from, None
        if state is None or state["epoch"] != self.sampler.epoch:
            return 0, 0  # a new epoch: the checkpoint was taken at the end of the one before
        done, blocks, K = state["batches_done"], state["blocks_done"], self.steps_per_execution
        if not blocks * K <= done <= (blocks + 1) * K:
            raise ResumeError(
                f"this checkpoint was taken in the middle of an epoch with --steps-per-execution "
                f"{state['steps_per_execution']}: resume it with the same value"
            )
        return done, blocks

    def __iter__(self) -> Iterator[list]:
        done, blocks = self.start()
        if self.progress is not None:
            self.first_step_of_epoch = self.progress()[0] - done
        minibatches = self.sampler.batches(done)
        for b in range(blocks, len(self)):
            end = min(self.steps, (b + 1) * self.steps_per_execution)
            block = list(itertools.islice(minibatches, end - done))
            done, self.handed_out = end, (end, b + 1)
            yield block


class GatheredBlocks(Dataset):
    """A dataset indexed with a block (a list of index batches): its minibatches gathered in one op, as
    (X, y, lengths), X (sum of lengths, num_inputs) and y (sum of lengths, 1)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitem__(self, block: list) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        lengths = [batch_length(batch) for batch in block]
        if not block or isinstance(block[0], slice):  # in order: consecutive slices make one slice, a view
            index = slice(block[0].start, block[-1].stop) if block else slice(0, 0)
        else:
            index = torch.cat(block)  # (sum of lengths,)
        if isinstance(index, torch.Tensor) and isinstance(self.dataset, TensorDataset):
            # index_select copies whole rows; X[index] (advanced indexing) goes element by element, several
            # times slower on the CPU at 100 features (docs/performance.md). The same values either way.
            X, y = (tensor.index_select(0, index) for tensor in self.dataset.tensors)
        else:
            X, y = self.dataset[index]
        return X, y, lengths


class BlockLoading:
    """A mixin for the DataModules of linreg/data.py: training batches are blocks of `steps_per_execution`
    minibatches, and every checkpoint holds the position in the epoch (`state_dict`)."""

    def __init__(self, *args, steps_per_execution: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.steps_per_execution = steps_per_execution
        self.hparams["steps_per_execution"] = steps_per_execution
        self.sampler: BlockSampler | None = None  # the training sampler in use
        self.sampler_state: dict | None = None  # its position, from a checkpoint being resumed

    def examples_per_read(self) -> int:
        return super().examples_per_read() * self.steps_per_execution  # a block of K minibatches

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: the block of index batches goes straight to GatheredBlocks.__getitem__
        self.sampler = self.blocks(self.train_sampler())
        return DataLoader(GatheredBlocks(self.train_dataset()), sampler=self.sampler, batch_size=None)

    def blocks(self, sampler: MinibatchSampler) -> BlockSampler:
        """The sampler's minibatches in blocks, continuing from the position saved in the checkpoint when
        resuming. The order itself is a function of (seed, epoch) alone: no RNG state to restore.

        Lightning keeps its own count of the epoch's blocks and ends the epoch when it reaches len(blocks),
        so the two counts must agree. When Lightning resumes in a later epoch than the checkpoint's (it
        ended an epoch, or a max_steps run, which Lightning records as a finished epoch), that epoch starts
        from its first block, and Lightning's count from 0 (see lightning_internals.restart_batch_count).
        """
        trainer = self.trainer
        progress = (lambda: (trainer.global_step, internals.batches_done_this_epoch(trainer))) if trainer else None
        blocks = BlockSampler(sampler, self.steps_per_execution, progress)
        if self.sampler_state is None:
            return blocks
        state, self.sampler_state = self.sampler_state, None
        blocks.load_state_dict(state)
        if trainer is not None and state["epoch"] != trainer.current_epoch:
            internals.restart_batch_count(trainer)
        return blocks

    def state_dict(self) -> dict:
        """Saved in every checkpoint: the training sampler's position, beside what the data saves itself."""
        state = super().state_dict()
        return state if self.sampler is None else state | {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.sampler_state = state.get("sampler")
