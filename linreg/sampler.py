"""A sampler with the semantics of the book's `data_iter`, yielding whole minibatches of indices.

The book shuffles a Python list of indices at the start of every pass and yields `batch_size` of them at a
time, the last batch possibly short. `MinibatchSampler` does the same with a tensor permutation: every
epoch is a fresh random order, every example appears exactly once, and the short last batch is kept.

The order is drawn from a private `torch.Generator` seeded from `derive_seed(seed, epoch)`, so it is reproducible and
independent of any other randomness (initialization, data, dropout...). Lightning calls `set_epoch` at
the start of every training epoch.

Used with `DataLoader(dataset, sampler=MinibatchSampler(...), batch_size=None)`: automatic batching is
off, so the dataset is indexed with a whole batch of indices at once, with no per-example collation.
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
    """Yields index batches of `batch_size` (the last one may be short) covering [0, num_examples).

    shuffle=True: a new permutation each epoch, from a generator seeded with `derive_seed(seed, epoch)`;
    each batch is a 1-D int64 tensor of indices (a view into that permutation).
    shuffle=False: the examples in order; each batch is a `slice`, so indexing gives views, not copies.
    `device`: where the index batches live; the data's device, so that gathering a batch stays there.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if num_examples < 0 or batch_size <= 0:
            raise ValueError(f"need num_examples >= 0 and batch_size > 0, got {num_examples}, {batch_size}")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.device = torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def permutation(self) -> torch.Tensor:
        """This epoch's order of the examples: (num_examples,) int64."""
        if not self.shuffle:
            return torch.arange(self.num_examples)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        # Drawn on the CPU, so the order is the same on every device; moved once per epoch, not per batch.
        return torch.randperm(self.num_examples, generator=generator).to(self.device)

    def __iter__(self) -> Iterator[torch.Tensor | slice]:
        if not self.shuffle:
            for start in range(0, self.num_examples, self.batch_size):
                yield slice(start, min(start + self.batch_size, self.num_examples))
            return
        yield from self.permutation().split(self.batch_size)
