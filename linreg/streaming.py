"""Data that does not fit in memory: the book's synthetic data as a stream, never materialized.

    dm = StreamingRegressionDataModule(num_examples=10**9, num_features=100, batch_size=1000)

- The data, CHUNK = 1024 examples at a time: chunk c is `torch.randn(CHUNK, d + 1)` from torch's own
  generator seeded with (base + c) mod 2³², base a hash of the seed; its rows are examples c·CHUNK, ...,
  the features x = z[:d] and y = x·w + b + noise · z[d]. So example i is a pure function of (seed, i),
  made by one call of torch's fastest sampler per 1024 examples. The held-out stream is the chunks below
  the base (base − 1, base − 2, ...): never a training chunk, whatever --num-examples. Made on the CPU,
  so the data is the same on every device.
- The order, a window of 16 chunks at a time: `linreg/stream_order.py` (`StreamingSampler`).
- Made ahead: the sampler tells the data which chunks the next window needs, and a background thread
  makes them while the current window trains (`SyntheticStream.prefetch`). The numbers never depend on
  it: a chunk not made ahead is made when asked for.

The stream is made per chunk because per example it would be dear: a counter-based generator in eager
tensor ops costs several times torch.randn for the same numbers, and its many small ops cannot be made
ahead without two threads fighting for Python (docs/performance.md).
Streaming and in-memory runs draw different data for the same seed: each path is reproducible on its own.
"""

import math
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch.utils.data import DataLoader, Dataset

from linreg.data import SyntheticRegressionDataModule
from linreg.sampler import derive_seed
from linreg.stream_order import CHUNK, MASK32, WINDOW, StreamingSampler

STREAM = -4  # the RNG stream of the seed that gives the data's base (see linreg.data)


class SyntheticStream(Dataset):
    """Example i of the stream: row i mod CHUNK of chunk i div CHUNK. Chunk c's numbers z (CHUNK, d+1) are
    torch.randn from a generator seeded with (base + direction · c) mod 2³²; x = z[:, :d] and
    y = x·w + b + noise · z[:, d].

    Chunks live in a pool of `capacity` slots on the device, the oldest making room for the next; a
    background thread makes them into their slots (`prefetch`). A batch is one gather from the pool.
    """

    def __init__(
        self, base: int, direction: int, true_w: torch.Tensor, true_b: float, noise: float, device, dtype
    ) -> None:
        self.base, self.direction, self.true_b, self.noise = base, direction, true_b, noise
        self.device, self.dtype = torch.device(device), dtype
        self.true_w = true_w.to("cpu", dtype)  # (num_inputs,): the chunks are made on the CPU
        self.capacity = 1  # chunks the pool holds: grown to what one read needs, set by the DataModule
        self.slots: dict[int, int] = {}  # chunk -> its slot in the pool, oldest first
        self.making: dict[int, Future] = {}  # slot -> the making of its chunk, until waited for
        self.pool: tuple[torch.Tensor, torch.Tensor] | None = None  # (capacity, CHUNK, d), (capacity, CHUNK)
        self.lookup: tuple[torch.Tensor, torch.Tensor] | None = None  # (chunks sorted, their slots)
        self.executor: ThreadPoolExecutor | None = None  # started on first use: after any fork

    def make(self, chunk: int, slot: int) -> None:
        """Chunk `chunk`'s examples into the pool's slot `slot` (on the background thread)."""
        generator = torch.Generator().manual_seed((self.base + self.direction * chunk) & MASK32)
        z = torch.randn(CHUNK, len(self.true_w) + 1, generator=generator, dtype=self.dtype)  # (CHUNK, d+1)
        X = z[:, :-1]  # (CHUNK, num_inputs)
        self.pool[0][slot].copy_(X)
        self.pool[1][slot].copy_(X @ self.true_w + self.true_b + self.noise * z[:, -1])  # y: (CHUNK,)

    def prefetch(self, chunks: Iterable[int]) -> None:
        """Have these chunks made on the background thread, in order, unless they are in the pool."""
        if self.pool is None or len(self.pool[0]) != self.capacity:
            self.allocate()
        for c in chunks:
            if c in self.slots:
                continue
            # a free slot, or the oldest chunk's (one thread makes them in order: never two into one at once)
            slot = len(self.slots) if len(self.slots) < self.capacity else self.slots.pop(next(iter(self.slots)))
            self.slots[c] = slot
            self.making[slot] = self.executor.submit(self.make, c, slot)
        self.lookup = None

    def allocate(self) -> None:
        """A fresh pool of `capacity` slots (on first use, or when a block needs more than it has)."""
        for future in self.making.values():
            future.result()
        d = len(self.true_w)
        with torch.inference_mode(False):  # normal tensors, also when first used by an evaluation
            self.pool = (
                torch.empty(self.capacity, CHUNK, d, dtype=self.dtype, device=self.device),
                torch.empty(self.capacity, CHUNK, dtype=self.dtype, device=self.device),
            )
        self.slots, self.making, self.lookup = {}, {}, None
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linreg-stream")

    def find(self, chunk: torch.Tensor) -> torch.Tensor | None:
        """Each chunk's slot in the pool, or None if one of them is not there: (n,) int64."""
        if not self.slots:
            return None
        if self.lookup is None:  # the chunks in the pool, sorted, and their slots: two (m,) tensors
            self.lookup = tuple(torch.tensor(sorted(self.slots.items()), device=self.device).T.contiguous())
        chunks, slots = self.lookup
        position = torch.searchsorted(chunks, chunk).clamp_(max=len(chunks) - 1)  # (n,)
        found = bool((chunks.index_select(0, position) == chunk).all())
        return slots.index_select(0, position) if found else None

    def __getitem__(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, slice):  # examples in order (the held-out evaluation)
            index = torch.arange(index.start, index.stop, device=self.device)
        if len(index) == 0:  # an empty shard of the held-out stream (fewer examples than ranks)
            empty = torch.empty(0, len(self.true_w), dtype=self.dtype, device=self.device)
            return empty, empty[:, :1]
        bits = CHUNK.bit_length() - 1  # CHUNK is a power of 2: shifts, not int64 division
        chunk, row = index >> bits, index & (CHUNK - 1)  # (n,), (n,)
        slot = self.find(chunk)
        if slot is None:  # not all made ahead (a test, the held-out stream, a resumed epoch): made now
            needed = chunk.unique().tolist()
            for c in needed:  # those already here become the newest: making the others pushes out the rest
                if c in self.slots:
                    self.slots[c] = self.slots.pop(c)
            self.capacity = max(self.capacity, len(needed))
            self.prefetch(needed)
            slot = self.find(chunk)
        for s in torch.bincount(slot, minlength=self.capacity).nonzero().reshape(-1).tolist():
            if s in self.making:  # made on the background thread: wait until it is
                self.making.pop(s).result()
        rows = slot * CHUNK + row  # (n,): rows of the pool seen as (capacity · CHUNK, ...)
        X = self.pool[0].reshape(-1, len(self.true_w)).index_select(0, rows)  # (n, num_inputs)
        y = self.pool[1].reshape(-1).index_select(0, rows)  # (n,)
        return X, y.reshape(-1, 1)


class StreamingRegressionDataModule(SyntheticRegressionDataModule):
    """The synthetic data of SyntheticRegressionDataModule (same arguments), streamed: nothing is stored
    but a few windows' chunks. Its examples differ from the in-memory ones for the same seed. The epoch-end
    evaluation is the held-out stream alone (`val_dataloader()` is `{"val": ...}`): the training set is
    too large to evaluate after every epoch."""

    def setup(self, stage: str) -> None:
        hp, device, dtype = self.hparams, self.root_device(), self.data_dtype()
        base = derive_seed(hp.seed, STREAM)
        self.train_stream = SyntheticStream(base, 1, self.true_w, hp.true_b, hp.noise, device, dtype)
        self.val_stream = SyntheticStream((base - 1) & MASK32, -1, self.true_w, hp.true_b, hp.noise, device, dtype)

    def train_sampler(self) -> StreamingSampler:
        hp = self.hparams
        return StreamingSampler(
            hp.num_examples, hp.batch_size, **self.sampler_options(), prefetch=self.train_stream.prefetch
        )

    def train_dataset(self) -> SyntheticStream:
        # The pool holds the chunks of every window one read takes from, and of the window made ahead: a read
        # of B examples spans at most ceil(B / window) + 1 windows (the sampler has asked for one more).
        examples = self.examples_per_read()  # one training read over all processes (K minibatches in a block)
        self.train_stream.capacity = WINDOW * (math.ceil(examples / (WINDOW * CHUNK)) + 2)
        return self.train_stream

    def val_dataloader(self) -> dict[str, DataLoader]:
        return {"val": self.in_order(self.val_stream, self.hparams.num_val)}
