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
- Memory: the row groups of two windows, the one in use and the next, read ahead on a background thread
  and standardized into the training dtype (linreg.row_group_pool). Not the data.
- Before training, one pass (`linreg.file_summary`): the standardization's statistics and the closed form.
"""

import bisect
import itertools
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset

from linreg.parquet_parts import ParquetParts
from linreg.sampler import MinibatchSampler, derive_seed
from linreg.stream_order import MASK32, feistel, mix32

WINDOW_ROWS = 65536  # training rows shuffled together, at least
MIN_GROUPS = 4  # row groups a window holds at least: ranks share at most one group per lane boundary
LANES = 8  # runs of a global batch's slots, each fed from its own part of the window (RowGroupSampler.window)


def split_rows(group, key: int, threshold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A row group's (training rows, held-out rows), as global row numbers: (m,), (rows - m,) int64."""
    rows = torch.arange(group.start, group.start + group.rows)
    if threshold == 0:  # none held out
        return rows, rows[:0]
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


class HeldOutRows(Dataset):
    """The held-out rows in global order, by position: `dataset[slice]` (for in_order's evaluation)."""

    def __init__(self, stream: Dataset, key: int, threshold: int, counts: torch.Tensor) -> None:  # a RowGroupStream
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


class InOrderRows(Dataset):
    """Every row of a stream in order, by position: `dataset[slice]` (the held-out rows' own copy, whose
    row r is held-out row r: linreg.file_summary)."""

    def __init__(self, stream: Dataset) -> None:  # a RowGroupStream
        self.stream = stream

    def __getitem__(self, positions: slice) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stream[positions]  # a range: one read of it where the stream has a row cache


class RowGroupSampler(MinibatchSampler):
    """MinibatchSampler over the training rows of the parts, in windows of row groups (module docstring).
    It yields global row numbers, and tells `prefetch(groups, now)` the groups this rank reads from the
    window of its next minibatch and from the window after it: at the epoch's start (now), and as its
    minibatches reach each window (once the ones drawn so far are gathered: RowGroupStream)."""

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

    def lane_counts(self, start: int, n: int) -> list[int]:
        """How many of the epoch's positions [start, start + n) fall in each lane. A global batch's G slots
        are cut into LANES runs, lane ℓ's slots [firsts[ℓ], firsts[ℓ + 1]); positions in lane ℓ take rows
        from the window's ℓ-th part."""
        firsts = self.lane_firsts()
        widths = [b - a for a, b in itertools.pairwise(firsts)]

        def before(p: int) -> list[int]:  # lane ℓ's positions among [0, p)
            batches, slot = divmod(p, self.batch_size * self.num_replicas)
            return [batches * w + min(max(slot - a, 0), w) for a, w in zip(firsts[:-1], widths, strict=True)]

        return [end - begin for begin, end in zip(before(start), before(start + n), strict=True)]

    def lane_firsts(self) -> list[int]:
        """The first slot of each lane in a global batch of G slots, then G: slot s is in lane ⌊s·LANES/G⌋."""
        G = self.batch_size * self.num_replicas
        return [-(-lane * G // LANES) for lane in range(LANES + 1)]

    def needed(self, groups: list[int], start: int) -> list[int]:
        """The groups of a window (its first position: start) that this rank's lanes take rows from."""
        if not self.shuffle:
            return groups
        counts = torch.tensor(self.lane_counts(start, int(self.counts[groups].sum())))
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
        # lane ℓ's positions, in order, take its run of rows shuffled. Lane ℓ holds slots [a, b) of every
        # global batch of G slots: its k-th position from the start of the window's first batch is that
        # batch's position (k // (b - a)) · G + a + k mod (b - a), element k of the (batches, b - a) grid
        # below; the window starts `offset` into that batch
        G, firsts = self.batch_size * self.num_replicas, self.lane_firsts()
        offset, order, begin = start % G, torch.empty_like(rows), 0
        for lane, count in enumerate(self.lane_counts(start, len(rows))):
            if count == 0:
                continue
            seed = derive_seed(derive_seed(key, -1 - w), lane)  # negative keys: apart from the Feistel round keys
            run = rows[begin : begin + count][torch.randperm(count, generator=torch.Generator().manual_seed(seed))]
            begin += count
            a, width = firsts[lane], firsts[lane + 1] - firsts[lane]
            skipped = min(max(offset - a, 0), width)  # its positions in the first batch before the window
            batches = -(-(skipped + count) // width)
            grid = (torch.arange(batches) * G + (a - offset)).unsqueeze(1) + torch.arange(width)  # (batches, b - a)
            order[grid.reshape(-1)[skipped : skipped + count]] = run
        return order

    def batches(self, first: int) -> Iterator[torch.Tensor]:
        key = derive_seed(self.seed, self.epoch)
        windows = self.windows(key)
        sizes = [int(self.counts[ws].sum()) for ws in windows]
        starts = [0, *itertools.accumulate(sizes)]  # window w holds the epoch's positions [starts[w], starts[w + 1])
        made: dict[int, torch.Tensor] = {}  # window -> its order: the one in use, and the next

        def window_of(step: int) -> int:  # the window of this rank's step (len(windows) past the epoch's end)
            return bisect.bisect_right(starts, self.bounds(step)[0], 1) - 1 if step < len(self) else len(windows)

        def ahead(w: int) -> list[int]:  # the groups to hold from window w on: its, and the next one's
            return [g for v in (w, w + 1) if v < len(windows) for g in self.needed(windows[v], starts[v])]

        def order(w: int) -> torch.Tensor:  # window w's order; the windows before it are done with
            if w not in made:
                made[w] = self.window(key, w, windows[w], starts[w])
                for old in [old for old in made if old < w]:
                    del made[old]
            return made[w]

        asked = window_of(first)
        groups = ahead(asked)
        if self.prefetch is not None:
            self.prefetch(groups, now=True)
        for step in range(first, len(self)):
            lo, hi = self.bounds(step)
            parts = []
            if hi > lo:
                for w in range(window_of(step), len(windows)):
                    if starts[w] >= hi:
                        break
                    parts.append(order(w)[max(lo, starts[w]) - starts[w] : min(hi, starts[w + 1]) - starts[w]])
            if self.prefetch is not None and window_of(step + 1) > asked:
                asked = window_of(step + 1)  # the next minibatch reaches a new window: it, and the one after
                self.prefetch(ahead(asked), now=False)
            yield torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)
