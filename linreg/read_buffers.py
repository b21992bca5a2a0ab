"""What a reading thread keeps from one row group to the next: arrays to reuse, and a helper thread.

    buffers = ReadBuffers()                       # one per reading thread (a stream keeps one for its own)
    block = buffers.get("float64", (1, rows), np.float64)
    for table in buffers.decoded(read, blocks):   # block k+1 decoded on the helper while k is used here
        ...
    buffers.transpose(out, by_column)             # out = by_column.T, half of it on the helper
    buffers.close()                               # the helper thread ends

linreg.parquet_parts.read_group uses it. Arrow decodes a block of columns on its own threads and numpy
standardizes it on the reading thread; done in turn, each waits for the other. With the helper, the next
block is decoded while this one is standardized, and a group's transpose is done in two halves at once
(docs/performance.md measures both). The helper runs at the priority of the thread that first asks for it:
a stream's reading thread runs at the lowest (linreg.row_group_pool), and so does its helper.
"""

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

HALVES_FROM = 1 << 20  # cells of a transpose done in two halves at once: below it, one copy costs less than a handoff


def thread_priority() -> int | None:
    """This thread's nice value (Linux, where each thread has its own); None elsewhere."""
    with contextlib.suppress(AttributeError, OSError):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    return None


def set_thread_priority(priority: int | None) -> None:
    """The helper's initializer: the priority of the thread it helps, for this thread alone."""
    if priority is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), priority)


class ReadBuffers:
    """Arrays that reads reuse, one read after another: no new memory, nor its first touches, per row group;
    and the helper thread of the module docstring, started at its first use."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.executor: ThreadPoolExecutor | None = None

    def get(self, name: str, shape: tuple[int, int], dtype) -> np.ndarray:
        """A view of the first `shape` of an array at least that large, made anew only when a read needs more."""
        array = self.arrays.get(name)
        if array is None or array.dtype != dtype or array.shape[0] < shape[0] or array.shape[1] < shape[1]:
            largest = shape if array is None else tuple(map(max, shape, array.shape))
            array = self.arrays[name] = np.empty(largest, dtype)
        return array[: shape[0], : shape[1]]

    def helper(self) -> ThreadPoolExecutor:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                1, thread_name_prefix="linreg-decode", initializer=set_thread_priority, initargs=(thread_priority(),)
            )
        return self.executor

    def decoded(self, read: Callable[[list[str]], object], blocks: list[list[str]], ahead: bool = True) -> Iterator:
        """read(block) for each block of columns, in order, the next one read on the helper meanwhile: two
        blocks in memory at a time, not one (ahead=False: one at a time, on this thread). Closed, it
        finishes the read it started before it returns, so that a file's memory map can close after it."""
        if len(blocks) < 2 or not ahead:
            yield from map(read, blocks)
            return
        ahead: Future | None = self.helper().submit(read, blocks[0])
        try:
            for k in range(len(blocks)):
                table, ahead = ahead.result(), None
                if k + 1 < len(blocks):
                    ahead = self.helper().submit(read, blocks[k + 1])
                yield table
                del table  # the block used: dropped before the next is waited for
        finally:
            if ahead is not None and not ahead.cancel():
                with contextlib.suppress(Exception):  # the error being raised is the one to see
                    ahead.result()

    def transpose(self, out: np.ndarray, by_column: np.ndarray) -> None:
        """out (rows, columns) = by_column (columns, rows).T: the first half of the rows on the helper."""
        half = out.shape[0] // 2
        if out.size < HALVES_FROM:
            np.copyto(out, by_column.T)
            return
        first = self.helper().submit(np.copyto, out[:half], by_column[:, :half].T)
        try:
            np.copyto(out[half:], by_column[:, half:].T)
        finally:
            first.result()

    def close(self) -> None:
        """The helper thread ends; the arrays stay for the next read."""
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None
