"""A sampler with the semantics of the book's `data_iter`, yielding whole minibatches of indices.

The book shuffles a Python list of indices at the start of every pass and yields `batch_size` of them at a
time, the last batch possibly short. `MinibatchSampler` does the same with a tensor permutation: every
epoch is a fresh random order, every example appears exactly once, and the short last batch is kept.

The order is drawn from a private `torch.Generator` seeded from `derive_seed(seed, epoch)`, so it is reproducible and
independent of any other randomness (initialization, data, dropout...). Lightning calls `set_epoch` at
the start of every training epoch.

Used with `DataLoader(dataset, sampler=MinibatchSampler(...), batch_size=None)`: automatic batching is
off, so the dataset is indexed with a whole batch of indices at once, with no per-example collation.
`linreg.steps_per_execution.BlockSampler` groups its minibatches K at a time for the command line.
"""

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

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
    `batches(first)` iterates the epoch from step `first` on (an exact mid-epoch resume starts there).
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
