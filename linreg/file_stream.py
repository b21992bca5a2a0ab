"""Your own data beyond memory: Parquet parts streamed a window of row groups at a time, every row once.

    dm = StreamedFileRegressionDataModule("data/", target="y", val_fraction=0.2, batch_size=1000)

- The rows: global row r is row r of the parts in path order (linreg.parquet_parts). Held out are the rows
  whose seeded hash of r falls below --val-fraction (or --num-val / rows) of 2³²: the same rows on every
  rank and in every epoch, never trained on, whatever the order.
- The order of an epoch (`RowGroupSampler`): the row groups in a pseudorandom order (a keyed Feistel
  permutation, linreg.stream_order), cut into windows of consecutive groups of at least `window_rows`
  training rows and MIN_GROUPS groups; each window's training rows shuffled, stratified by lanes (see
  `RowGroupSampler.window`). Every training row comes once per epoch; a window mixes rows of its groups,
  from any files, and which groups share a window changes every epoch. The order is a function of the
  seed, the epoch and the global batch: not of the number of processes, which take their slices of it as
  from MinibatchSampler, each reading only the groups of its lanes.
- Memory: the row groups of the windows in use and of the next, read ahead on a background thread,
  standardized into the training dtype. Not the data.
- Before training, one pass (`linreg.file_summary`): the standardization's statistics and the closed form.
"""

import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch.utils.data import Dataset

from linreg.data_files import release_freed_memory
from linreg.parquet_parts import ParquetParts
from linreg.sampler import MinibatchSampler, derive_seed
from linreg.stream_order import MASK32, feistel, mix32

WINDOW_ROWS = 65536  # training rows shuffled together, at least
MIN_GROUPS = 4  # row groups a window holds at least: ranks share at most one group per lane boundary
LANES = 8  # runs of a global batch's slots, each fed from its own part of the window (RowGroupSampler.window)


def split_rows(group, key: int, threshold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A row group's (training rows, held-out rows), as global row numbers: (m,), (rows - m,) int64."""
    rows = torch.arange(group.start, group.start + group.rows)
    held = held_out(rows, key, threshold)
    return rows[~held], rows[held]


def held_out(rows: torch.Tensor, key: int, threshold: int) -> torch.Tensor:
    """Whether each global row (int64) is held out: a 32-bit hash of (row, key) below `threshold`."""
    if threshold == 0:
        return torch.zeros(len(rows), dtype=torch.bool)
    if len(rows) and int(rows.max()) <= MASK32:  # the high word is 0: one hash, not one per row
        return mix32((rows & MASK32) ^ mix32(key & MASK32)) < threshold
    high = mix32(((rows >> 32) ^ key) & MASK32)
    return mix32((rows & MASK32) ^ high) < threshold


class RowGroupStream(Dataset):
    """The rows of the parts by global row number, `dataset[rows]` → (X (n, d), y (n, 1)), standardized.

    Row groups live in a pool of `capacity` slots of the largest group's rows on the device, the oldest
    making room for the next; a background thread reads them into their slots (`prefetch`), and a group
    not read ahead is read when asked for. A batch is one gather from the pool.
    """

    def __init__(self, parts: ParquetParts, columns: list[str], mean, std, device, dtype, capacity: int = 4) -> None:
        self.parts, self.columns, self.device, self.dtype = parts, columns, torch.device(device), dtype
        self.center = torch.cat([mean.double(), torch.zeros(1, dtype=torch.float64)])  # the target: unchanged
        self.scale = torch.cat([std.double(), torch.ones(1, dtype=torch.float64)])
        self.capacity, self.width = capacity, max(g.rows for g in parts.groups)  # slots, and rows per slot
        self.pool: torch.Tensor | None = None  # (capacity · width, d + 1): [X, y] of the groups in it
        self.slots: dict[int, int] = {}  # group -> its slot, oldest first
        self.making: dict[int, Future] = {}  # slot -> the reading of its group, until waited for
        self.offsets = torch.full((len(parts.groups),), -1, dtype=torch.int64)  # group -> first pool row; -1: none
        self.executor: ThreadPoolExecutor | None = None  # started on first use: after any fork

    def read(self, g: int, slot: int) -> None:
        """Group g into its slot: the features standardized as the in-memory path makes them, y as it is."""
        table = self.parts.read_group(g, self.columns, self.dtype, self.center, self.scale)  # (rows, d + 1)
        self.pool[slot * self.width : slot * self.width + len(table)] = table.to(self.device)
        release_freed_memory()  # Arrow's buffers, else kept by the allocator: memory would grow with the data

    def prefetch(self, groups: list[int]) -> None:
        """Have these groups read on the background thread, in order, unless they are in the pool; the
        pool grows to hold them all (they are those in use and those read ahead)."""
        self.capacity = max(self.capacity, len(groups))
        if self.pool is None or len(self.pool) != self.capacity * self.width:
            self.allocate()
        for g in groups:
            if g in self.slots:
                self.slots[g] = self.slots.pop(g)  # the newest now
                continue
            if len(self.slots) < self.capacity:
                slot = len(self.slots)
            else:  # the oldest group's slot, once its reading is done
                oldest = next(iter(self.slots))
                slot = self.slots.pop(oldest)
                self.offsets[oldest] = -1
                if slot in self.making:
                    self.making.pop(slot).result()
            self.slots[g], self.offsets[g] = slot, slot * self.width
            self.making[slot] = self.executor.submit(self.read, g, slot)

    def allocate(self) -> None:
        """The pool, with `capacity` slots: the groups already in it keep their slots."""
        for future in self.making.values():
            future.result()
        self.making = {}
        with torch.inference_mode(False):  # a normal tensor, also when first used by an evaluation
            pool = torch.empty(self.capacity * self.width, len(self.columns), dtype=self.dtype, device=self.device)
        if self.pool is not None:
            pool[: len(self.pool)] = self.pool
        self.pool = pool
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linreg-parquet")

    def __getitem__(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = rows.cpu()
        groups = torch.searchsorted(self.parts.starts, rows, right=True) - 1  # (n,)
        offsets = self.offsets.index_select(0, groups)
        if bool((offsets < 0).any()):  # not all read ahead (a resumed epoch, the held-out rows): read now
            self.prefetch(groups.unique().tolist())
            offsets = self.offsets.index_select(0, groups)
        for slot in (offsets // self.width).unique().tolist():
            if slot in self.making:  # read on the background thread: wait until it is
                self.making.pop(slot).result()
        table = self.pool.index_select(0, (offsets + rows - self.parts.starts.index_select(0, groups)).to(self.device))
        return table[:, :-1], table[:, -1:]


class HeldOutRows(Dataset):
    """The held-out rows in global order, by position: `dataset[slice]` (for in_order's evaluation)."""

    def __init__(self, stream: RowGroupStream, key: int, threshold: int, counts: torch.Tensor) -> None:
        self.stream, self.key, self.threshold = stream, key, threshold
        self.ends = counts.cumsum(0)  # (groups,): held-out rows up to the end of each group

    def __getitem__(self, positions: slice) -> tuple[torch.Tensor, torch.Tensor]:
        first = int(torch.searchsorted(self.ends, positions.start, right=True))
        last = int(torch.searchsorted(self.ends, max(positions.stop - 1, positions.start), right=True))
        rows = []
        for g in range(first, min(last + 1, len(self.ends))):
            rows.append(split_rows(self.stream.parts.groups[g], self.key, self.threshold)[1])
        rows = torch.cat(rows) if rows else torch.empty(0, dtype=torch.int64)
        before = int(self.ends[first - 1]) if first > 0 else 0
        return self.stream[rows[positions.start - before : positions.stop - before]]


class RowGroupSampler(MinibatchSampler):
    """MinibatchSampler over the training rows of the parts, in windows of row groups (module docstring).
    It yields global row numbers; `prefetch(groups)` is told each window's groups one window ahead."""

    def __init__(
        self,
        *args,
        parts: ParquetParts,
        counts: torch.Tensor,
        key: int,
        threshold: int,
        window_rows: int = WINDOW_ROWS,
        prefetch: Callable[[list[int]], None] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.parts, self.counts, self.key, self.threshold = parts, counts, key, threshold  # counts: training rows
        self.window_rows, self.prefetch = window_rows, prefetch

    def windows(self, key: int) -> list[list[int]]:
        """The epoch's row groups in order, cut into windows of at least window_rows training rows and
        MIN_GROUPS groups."""
        G = len(self.parts.groups)
        order = feistel(key, torch.arange(G), G).tolist() if self.shuffle and G > 1 else list(range(G))
        windows, current, rows = [], [], 0
        for g in order:
            if self.counts[g] == 0:
                continue
            current.append(g)
            rows += int(self.counts[g])
            if rows >= self.window_rows and len(current) >= MIN_GROUPS:
                windows.append(current)
                current, rows = [], 0
        return windows + ([current] if current else [])

    def lanes(self, start: int, n: int) -> torch.Tensor:
        """The lane of each of the epoch's positions [start, start + n): (n,). A global batch's G slots are
        cut into LANES equal runs; positions in run ℓ take rows from the window's ℓ-th part."""
        G = self.batch_size * self.num_replicas
        return ((torch.arange(start, start + n) % G) * LANES) // G

    def needed(self, groups: list[int], start: int) -> list[int]:
        """The groups of a window (its first position: start) that this rank's lanes take rows from."""
        if not self.shuffle:
            return groups
        counts = torch.bincount(self.lanes(start, int(self.counts[groups].sum())), minlength=LANES)
        bounds = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])  # lane ℓ: rows [bounds ℓ, ℓ+1)
        B, G = self.batch_size, self.batch_size * self.num_replicas
        first, last = self.rank * B * LANES // G, ((self.rank + 1) * B - 1) * LANES // G  # this rank's lanes
        lo, hi = int(bounds[first]), int(bounds[last + 1])
        ends = self.counts[groups].cumsum(0)  # the window's rows up to the end of each of its groups
        return [g for g, end, size in zip(groups, ends.tolist(), self.counts[groups].tolist(), strict=True)
                if end > lo and end - size < hi]  # fmt: skip

    def window(self, key: int, w: int, groups: list[int], start: int) -> torch.Tensor:
        """Window w's training rows (global numbers), in the epoch's order: (rows,) int64. Lane ℓ's positions
        take the window's ℓ-th run of rows (its groups in order), shuffled: a rank whose slots lie in a few
        lanes reads only those runs' groups, whatever the number of ranks (the lanes are the global batch's)."""
        rows = torch.cat([split_rows(self.parts.groups[g], self.key, self.threshold)[0] for g in groups])
        if not self.shuffle:
            return rows
        lanes = self.lanes(start, len(rows))
        order, begin = torch.empty_like(rows), 0
        for lane, count in enumerate(torch.bincount(lanes, minlength=LANES).tolist()):
            seed = derive_seed(derive_seed(key, -1 - w), lane)  # negative keys: apart from the Feistel round keys
            run = rows[begin : begin + count]
            order[lanes == lane] = run[torch.randperm(count, generator=torch.Generator().manual_seed(seed))]
            begin += count
        return order

    def batches(self, first: int) -> Iterator[torch.Tensor]:
        key = derive_seed(self.seed, self.epoch)
        windows = self.windows(key)
        sizes = torch.tensor([int(self.counts[ws].sum()) for ws in windows], dtype=torch.int64)
        ends = sizes.cumsum(0)  # (windows,): positions up to the end of each window
        made: dict[int, torch.Tensor] = {}
        for step in range(first, len(self)):
            lo, hi = self.bounds(step)
            parts = []
            if hi > lo:
                for w in range(int(torch.searchsorted(ends, lo, right=True)), len(windows)):
                    start = int(ends[w - 1]) if w > 0 else 0
                    if start >= hi:
                        break
                    if w not in made:
                        if self.prefetch is not None:  # the groups this rank reads: the windows in use, the next
                            use = [(v, int(ends[v - 1]) if v > 0 else 0) for v in (w - 1, w, w + 1) if v >= 0]
                            self.prefetch([g for v, at in use if v < len(windows) for g in self.needed(windows[v], at)])
                        made[w] = self.window(key, w, windows[w], start)
                        for old in [old for old in made if old < w]:
                            del made[old]
                    parts.append(made[w][max(lo, start) - start : min(hi, int(ends[w])) - start])
            yield torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)


def stream_capacity(parts: ParquetParts, window_rows: int) -> int:
    """Row groups the pool keeps: three windows' worth, from the smallest groups' size. A read of K
    minibatches may span two windows, and the next is read ahead when a minibatch first reaches it."""
    smallest = min(g.rows for g in parts.groups)
    return 3 * max(MIN_GROUPS, math.ceil(window_rows / smallest) + 1)
