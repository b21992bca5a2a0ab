"""A stream's row groups in memory: a pool of slots, filled ahead of use by a background reading thread.

    stream = RowGroupStream(parts, columns, mean, std, "cpu", torch.float32, capacity)
    stream.prefetch([3, 7])           # read groups 3 and 7 into the pool on the background thread
    X, y = stream[rows]               # the global rows (n,) or a slice of them, standardized: (n, d), (n, 1)
                                      # (a slice with a row cache: read straight from it, `read_range`)

The sampler (linreg.file_stream.RowGroupSampler) says which groups to read and when; this file holds them.
A group is read from the row cache's standardized copy (linreg.training_rows) or from the row cache
(linreg.row_cache) when the stream has one, else from the files: the same bits.
A gather that needs a group the reading thread has not started reads it itself rather than idle (`wait`).
The reading thread runs numpy, not torch, at the lowest CPU priority (`lowest_priority`): training's
speed comes first, and docs/performance.md measures why. linreg-train also leaves it a core of its own
(linreg.cli.a_core_for_the_reader).
"""

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch.utils.data import Dataset

from linreg.data_files import release_freed_memory
from linreg.file_stream import MIN_GROUPS
from linreg.parquet_parts import ParquetParts
from linreg.read_buffers import ReadBuffers, set_thread_priority

ABSENT = -(2**62)  # the shift of a group not in the pool: its rows' pool rows come out negative


class RowGroupStream(Dataset):
    """The rows of the parts by global row number, `dataset[rows]` → (X (n, d), y (n, 1)), standardized.

    Row groups live in a pool of `capacity` slots of the largest group's rows on the device, the oldest
    making room for the next; a background thread reads them into their slots (`prefetch`), and a group
    not read ahead is read when asked for. A batch is one gather from the pool, a copy: once it is made,
    the groups it came from may go. `prefetch(groups, now=False)` waits for that: the sampler, which runs
    up to a block of K minibatches ahead of the gathers, asks for the next window when its minibatches
    reach it, and the groups before it are still to be gathered from.
    """

    def __init__(
        self, parts: ParquetParts, columns: list[str], mean, std, device, dtype, capacity: int = 4, rows=None
    ) -> None:
        self.parts, self.columns, self.device, self.dtype = parts, columns, torch.device(device), dtype
        # read rather than the files, if given: the row cache or its standardized copy (linreg.training_rows)
        self.rows = rows
        self.center, self.scale = columns_standardization(mean, std)
        self.capacity, self.width = capacity, max(g.rows for g in parts.groups)  # slots, and rows per slot
        # X (capacity · width, d) and y (capacity · width, 1) of the groups in it: apart, so that a gather's X
        # is contiguous (a column slice of [X, y] would be strided, and each matmul on it slower)
        self.pool: tuple[torch.Tensor, torch.Tensor] | None = None
        self.slots: dict[int, int] = {}  # group -> its slot, oldest first
        self.making: dict[int, Future] = {}  # slot -> the reading of its group, until waited for
        # group -> its pool row minus its first global row: a global row r of g is pool row r + shifts[g]
        self.shifts = torch.full((len(parts.groups),), ABSENT, dtype=torch.int64)
        self.after_gather: list[int] | None = None  # the groups to prefetch once the next gather is made
        self.queued, self.lock = 0, threading.Lock()  # reads asked for and not yet done
        self.executor: ThreadPoolExecutor | None = None  # started on first use: after any fork
        # the reading thread's, reused group after group, and the training thread's for the reads it takes
        # over (`wait`): made at its first such read
        self.buffers, self.inline_buffers = ReadBuffers(), ReadBuffers()

    def read(self, g: int, slot: int, inline: bool = False) -> None:
        """Group g into its slot: the features standardized as the in-memory path makes them, y as it is.
        inline: on the training thread, which would otherwise wait (`wait`), with buffers of its own."""
        buffers = self.inline_buffers if inline else self.buffers
        rows = slice(slot * self.width, slot * self.width + self.parts.groups[g].rows)
        features, target = self.columns[:-1], self.columns[-1:]
        try:
            if self.rows is not None:  # the same bits as read_group's (linreg.row_cache, linreg.training_rows)
                n, d = rows.stop - rows.start, len(features)
                cpu = self.device.type == "cpu"  # else host rows, copied to the device after
                X, y = (
                    (self.pool[0][rows], self.pool[1][rows])
                    if cpu
                    else (torch.empty(n, k, dtype=self.dtype) for k in (d, 1))
                )
                self.rows.read_into(self.parts.groups[g].start, X.numpy(), y.numpy(), self.center, self.scale, buffers)
                if not cpu:
                    self.pool[0][rows], self.pool[1][rows] = X.to(self.device), y.to(self.device)
                return
            for pool, names, at in ((self.pool[0], features, slice(0, -1)), (self.pool[1], target, slice(-1, None))):
                center, scale = self.center[at], self.scale[at]
                if self.device.type == "cpu":  # straight into the pool: no torch op on this thread (read_group)
                    out = pool[rows].numpy()
                    self.parts.read_group(g, names, self.dtype, center, scale, out=out, buffers=buffers)
                else:
                    pool[rows] = self.parts.read_group(g, names, self.dtype, center, scale).to(self.device)
        finally:  # a bad cell raises here, and again where the gather waits for this read
            # Arrow's and numpy's buffers, else kept by the allocators: memory would grow with the data. Arrow's
            # pool is emptied when no other read waits: each read reuses the one before's buffers, not the OS's
            with self.lock:
                self.queued -= 1
                last = self.queued == 0
            release_freed_memory(arrow=last)

    def prefetch(self, groups: list[int], now: bool = True) -> None:
        """Have these groups read on the background thread, in order, unless they are in the pool; the
        pool grows to hold them all (they are those in use and those read ahead). now=False: once the next
        gather is made (class docstring)."""
        if not now:
            self.after_gather = groups
            return
        self.after_gather = None
        self.capacity = max(self.capacity, len(groups))
        if self.pool is None or len(self.pool[0]) != self.capacity * self.width:
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
                self.shifts[oldest] = ABSENT
                if slot in self.making:  # its reading: done, or not started and not to be
                    future = self.making.pop(slot)
                    if future.cancel():
                        with self.lock:
                            self.queued -= 1
                    else:
                        future.result()
            self.slots[g], self.shifts[g] = slot, slot * self.width - self.parts.groups[g].start
            with self.lock:
                self.queued += 1
            self.making[slot] = self.submit(self.read, g, slot)

    def wait(self, slots: list[int]) -> None:
        """Until the groups of these slots (in the order asked for) are read. Those not yet started are read
        here instead, on the caller's thread, which would otherwise idle, from the last back while the
        reading thread goes on from the first: at an epoch's start, or whenever training outruns the reading
        thread, two cores read rather than one."""
        for slot in reversed(slots):
            if self.making[slot].cancel():
                del self.making[slot]
                self.read(next(g for g, s in self.slots.items() if s == slot), slot, inline=True)
        for slot in slots:
            if slot in self.making:
                self.making.pop(slot).result()

    def allocate(self) -> None:
        """The pool, with `capacity` slots: the groups already in it keep their slots. Zeroed, so that its pages
        are the process's from here on: reads into fresh pages take two to three times as long, their page
        faults included (docs/performance.md). A stream's DataModule allocates it in setup, before training."""
        for future in self.making.values():
            future.result()
        self.making = {}
        with torch.inference_mode(False):  # a normal tensor, also when first used by an evaluation
            size, d = self.capacity * self.width, len(self.columns) - 1
            pool = tuple(torch.zeros(size, k, dtype=self.dtype, device=self.device) for k in (d, 1))
        if self.pool is not None:
            for new, old in zip(pool, self.pool, strict=True):
                new[: len(old)] = old
        self.pool = pool

    def submit(self, fn: Callable, *args) -> Future:
        """fn(*args) on the reading thread (started on first use), after what was asked of it before."""
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="linreg-parquet", initializer=lowest_priority)
        return self.executor.submit(fn, *args)

    def __getitem__(self, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(rows, slice) and self.rows is not None:  # a range of rows (the held-out copy's, in order)
            return self.read_range(rows.start, rows.stop)
        # a slice: global rows [start, stop), as linreg.block_loading indexes with a resumed epoch's empty block
        rows = torch.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows.cpu()
        groups = torch.searchsorted(self.parts.starts, rows, right=True) - 1  # (n,)
        at = rows + self.shifts.index_select(0, groups)  # (n,): rows of the pool; negative: not there
        if bool((at < 0).any()):  # not all read ahead (a resumed epoch, the held-out rows): read now
            self.prefetch(groups.unique().tolist())
            at = rows + self.shifts.index_select(0, groups)
        if self.making:  # being read, or queued to be: wait for those the gather takes rows from
            used = torch.bincount(at // self.width, minlength=self.capacity).tolist()
            self.wait([slot for slot in self.making if used[slot]])
        at = at.to(self.device)
        X, y = self.pool[0].index_select(0, at), self.pool[1].index_select(0, at)
        if self.after_gather is not None:
            self.prefetch(self.after_gather)
        return X, y

    def read_range(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows [start, stop) read straight from the row cache (or its copy), on this thread, bypassing
        the pool: no group read whole, no gather. The same bits as through the pool."""
        n, d = stop - start, len(self.columns) - 1
        X, y = torch.empty(n, d, dtype=self.dtype), torch.empty(n, 1, dtype=self.dtype)
        self.rows.read_into(start, X.numpy(), y.numpy(), self.center, self.scale, self.inline_buffers)
        return X.to(self.device), y.to(self.device)


def columns_standardization(mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(center, scale) of the columns, features then target: (d + 1,) float64 each, the target unchanged."""
    zero, one = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    return torch.cat([mean.double(), zero]), torch.cat([std.double(), one])


def lowest_priority() -> None:
    """The reading thread's initializer: the lowest CPU priority (nice 19), for this thread alone (Linux).

    Training runs Python on one core and torch's parallel ops on both; a reader that competes with the
    second thread of those ops makes each of them wait for it, several times over. At the lowest priority
    training keeps its speed, and the reader gets what is left: on a busy 2-core machine that is mostly
    while training waits for it (docs/performance.md measures both). Elsewhere than Linux: nothing."""
    set_thread_priority(19)


def stream_capacity(parts: ParquetParts, window_rows: int) -> int:
    """Row groups the pool keeps at first: two windows' worth, the one in use and the next, from the
    smallest groups' size. It grows if a read needs more (RowGroupStream.prefetch)."""
    smallest = min(g.rows for g in parts.groups)
    return 2 * max(MIN_GROUPS, math.ceil(window_rows / smallest) + 1)
