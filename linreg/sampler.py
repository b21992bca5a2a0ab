"""A sampler with the semantics of the book's `data_iter`, yielding whole minibatches of indices.

The book shuffles a Python list of indices at the start of every pass and yields `batch_size` of them at a
time, the last batch possibly short. `MinibatchSampler` does the same with a tensor permutation: every
epoch is a fresh random order, every example appears exactly once, and the short last batch is kept.

The order is drawn from a private `torch.Generator` seeded from `derive_seed(seed, epoch)`, so it is reproducible and
independent of any other randomness (initialization, data, dropout...). Lightning calls `set_epoch` at
the start of every training epoch.

Used with `DataLoader(dataset, sampler=MinibatchSampler(...), batch_size=None)`: automatic batching is
off, so the dataset is indexed with a whole batch of indices at once, with no per-example collation.

`Blocks` hands the training loop K consecutive minibatches at a time (steps per execution: one Lightning
batch, K SGD updates), and keeps the position a checkpoint needs to resume between any two updates.
"""

import itertools
import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from linreg.errors import ResumeError

MASK64 = 2**64 - 1


def derive_seed(seed: int, key: int) -> int:
    """A seed for the stream `key` of `seed`: splitmix64 of the pair, folded to 32 bits.

    Folded because torch's CPU generator (mt19937) keeps only the low 32 bits of a seed: packing
    (seed, epoch) as `seed << 32 | epoch` would give every seed the same order.
    """
    x = (seed * 0x9E3779B97F4A7C15 + key) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    x ^= x >> 31
    return (x ^ (x >> 32)) & 0xFFFFFFFF


class MinibatchSampler(Sampler[torch.Tensor | slice]):
    """Yields index batches covering [0, num_examples) once per epoch, the last one possibly short.

    shuffle=True: a new permutation each epoch, from a generator seeded with `derive_seed(seed, epoch)`;
    each batch is a 1-D int64 tensor of indices (a view into that permutation).
    shuffle=False: the examples in order; each batch is a `slice`, so indexing gives views, not copies.
    `device`: where the index batches live; the data's device, so that gathering a batch stays there.

    Distributed (num_replicas R > 1): the epoch's permutation is the same on every rank; each global
    batch is R × batch_size consecutive indices of it, and rank r takes the r-th part. A short last global
    batch of m indices is split as evenly as possible: rank r takes m // R indices, plus one if r < m % R
    (so with m < R some ranks take none). Every rank has the same number of steps, len(self).
    `batches(first)` iterates the epoch from step `first` on (resuming: see `Blocks`).
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if num_examples < 0 or batch_size <= 0:
            raise ValueError(f"need num_examples >= 0 and batch_size > 0, got {num_examples}, {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank {rank} of {num_replicas}")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = torch.device(device)
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.num_examples / (self.batch_size * self.num_replicas))

    def permutation(self) -> torch.Tensor:
        """This epoch's order of the examples, the same on every rank: (num_examples,) int64."""
        if not self.shuffle:
            return torch.arange(self.num_examples)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        # Drawn on the CPU, so the order is the same on every device; moved once per epoch, not per batch.
        return torch.randperm(self.num_examples, generator=generator).to(self.device)

    def bounds(self, step: int) -> tuple[int, int]:
        """[lo, hi): this rank's part of the epoch's order at `step`."""
        global_batch = self.batch_size * self.num_replicas
        start = step * global_batch
        q, extra = divmod(min(global_batch, self.num_examples - start), self.num_replicas)
        lo = start + self.rank * q + min(self.rank, extra)
        return lo, lo + q + (self.rank < extra)

    def __iter__(self) -> Iterator[torch.Tensor | slice]:
        return self.batches(0)

    def batches(self, first: int) -> Iterator[torch.Tensor | slice]:
        """This rank's index batches of the epoch, from step `first` on."""
        steps = range(first, len(self))
        if not self.shuffle:
            for step in steps:
                yield slice(*self.bounds(step))
            return
        permutation = self.permutation()
        for step in steps:
            lo, hi = self.bounds(step)
            yield permutation[lo:hi]


AUTO_BLOCK_EXAMPLES, AUTO_MAX_STEPS = 16384, 100


def auto_steps_per_execution(batch_size: int) -> int:
    """The default K: as many updates as fit in a block of 16,384 examples, at most 100 and at least 1.

    At batch 10 that is 100: Lightning's ~0.3 ms per batch then costs 3 µs per update. At batch 1000 it is
    16, and a block stays small enough (a 6.5 MB gather at 100 features, or about one window of the
    streamed data) to stay in cache; at batch 16,384 and above it is 1, where the update's own arithmetic
    dwarfs Lightning's cost anyway.
    """
    return max(1, min(AUTO_MAX_STEPS, AUTO_BLOCK_EXAMPLES // batch_size))


class Blocks(Sampler[list]):
    """The minibatches of a MinibatchSampler, K consecutive ones at a time: steps per execution.

    Each item is one Lightning batch: a list of up to K index batches, which `training_step` turns into K
    SGD updates, so Lightning's per-batch cost is paid once per K updates. Block b holds the epoch's steps
    [b·K, (b+1)·K), the last block possibly shorter: len = ceil(steps / K). The minibatches themselves,
    the short last one and the DDP split are the sampler's, whatever K.

    The position, `state_dict()`, is saved in every checkpoint: the epoch, the minibatches of it trained
    on (`batches_done`), and the blocks Lightning counts as done (`blocks_done`), measured through
    `progress() -> (global_step, blocks processed)` when given, else as handed out. A checkpoint may be
    taken between any two updates, in the middle of a block too. Resuming that epoch, the first block is
    the rest of the one in progress, possibly empty, so that Lightning's count of blocks and this one agree.
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
        """SGD updates per epoch (on every rank)."""
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
