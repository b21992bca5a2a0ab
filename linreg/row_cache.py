"""The row cache: the columns of streamed Parquet parts as read, row-major float64, written by the pass.

    with RowCacheWriter(path, rows, width) as writer:   # by the pass (linreg.file_summary), group by group
        writer.write(table)                              # (rows, width) float64: a group's columns, as read
    cache = RowCache.open(path, rows, width)             # None unless whole
    cache.read_into(start, X, y, center, scale, buffers)   # rows [start, start + len(X)), standardized

Every epoch, a stream reads each row group it trains on (linreg.row_group_pool). From the Parquet files,
that is a decode by Arrow, a standardization, and a transpose into rows: on 2 cores, as much CPU as
training itself (docs/performance.md). From this cache, a group is one contiguous read, from the page
cache while the files fit in it, and the same standardization: the same bits as read_group's, for each
cell is (x − mean) / std in float64, rounded once into the training dtype, as there.

It costs disk, 8 bytes per cell (about the size of the Parquet files of random float64 data; more where
they compress well): it is written only where the cache folder keeps room for it and a margin
(`room_for`), and never by the processes of a shared pass (each reads a share). A cache of other files or
columns is another name; one of these files before they changed is removed when the new one is written.
"""

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from linreg.read_buffers import ReadBuffers

MARGIN = 1 << 30  # bytes the cache folder keeps free beside a row cache
CHUNK_BYTES = 1 << 21  # float64 bytes of rows read at a time: a buffer that stays in the core's cache


def room_for(folder: Path, size: int) -> bool:
    """Whether the folder's disk has `size` bytes free, and MARGIN more."""
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(folder).free >= size + MARGIN


class RowCacheWriter:
    """Writes a row cache group after group, to a new name renamed into place when whole: a run killed
    while writing, or runs writing the same cache at once, never leave a partial cache under its name."""

    def __init__(self, path: Path, rows: int, width: int) -> None:
        self.path, self.size = path, rows * width * 8
        self.temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.file = None

    def __enter__(self) -> "RowCacheWriter":
        self.file = open(self.temporary, "wb")  # closed in __exit__
        return self

    def write(self, table) -> None:
        """A group's columns (rows, width) float64 (a tensor or an array, any layout): written as rows."""
        self.file.write(np.ascontiguousarray(np.asarray(table)).data)

    def __exit__(self, kind, error, traceback) -> None:
        self.file.close()
        if kind is None and self.temporary.stat().st_size == self.size:
            for old in self.path.parent.glob(f"{self.path.name.rsplit('-', 1)[0]}-*.f64"):
                if old != self.path:  # the same data before it changed: never read again
                    old.unlink(missing_ok=True)
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


class RowCache:
    """A whole row cache (the module docstring), read with pread on a descriptor of each read's own: a
    stream's reading thread and its training thread (which reads a group itself rather than wait) may
    read at once, and nothing stays open."""

    def __init__(self, path: Path, width: int) -> None:
        self.path, self.width = path, width

    @classmethod
    def open(cls, path: Path | None, rows: int, width: int) -> "RowCache | None":
        try:
            return cls(path, width) if path is not None and path.stat().st_size == rows * width * 8 else None
        except OSError:  # removed since the pass: the stream reads the files
            return None

    def read_into(self, start: int, X: np.ndarray, y: np.ndarray, center, scale, buffers: ReadBuffers) -> None:
        """Rows [start, start + len(X)) standardized into X (n, width - 1) and y (n, 1), both in the training
        dtype: (cells - center) / scale in float64 ((width,) tensors; the target's 0 and 1), rounded once."""
        d, step = self.width - 1, max(1, CHUNK_BYTES // (8 * self.width))
        center, scale = center.numpy(), scale.numpy()
        flat = buffers.get("rows", (1, step * self.width), np.float64)[0]  # contiguous whatever it held before
        with open(self.path, "rb", buffering=0) as file:
            for first in range(0, len(X), step):
                n = min(step, len(X) - first)
                cells = flat[: n * self.width].reshape(n, self.width)  # (n, width), as read
                read_exactly(file.fileno(), memoryview(cells).cast("B"), (start + first) * self.width * 8)
                np.subtract(cells, center, out=cells)
                np.divide(cells[:, :d], scale[:d], out=X[first : first + n], casting="unsafe")
                np.divide(cells[:, d:], scale[d:], out=y[first : first + n], casting="unsafe")


def read_exactly(fd: int, into: memoryview, offset: int) -> None:
    """len(into) bytes of the file from offset (pread may return fewer)."""
    done = 0
    while done < len(into):
        got = os.preadv(fd, [into[done:]], offset + done)
        if got == 0:
            raise OSError(f"row cache: {len(into) - done} bytes missing at offset {offset + done}")
        done += got


def row_cache_writer(path: Path, rows: int, width: int) -> RowCacheWriter | None:
    """A writer of the row cache at path, or None, said in one warning line, where its disk lacks room."""
    size = rows * width * 8
    if room_for(path.parent, size):
        return RowCacheWriter(path, rows, width)
    warnings.warn(
        f"{path.parent}: no room for a row cache of {size / 1e9:.1f} GB and 1 GB to spare; every epoch "
        "decodes the Parquet files instead, which is slower (--no-row-cache: never write one)",
        stacklevel=3,
    )
    return None


def write_row_cache(parts, columns: list[str], writer: RowCacheWriter) -> None:
    """A row cache of these columns of the parts, read for it alone (the pass writes one as it reads)."""
    buffers = ReadBuffers()
    try:
        with writer:
            for g in range(len(parts.groups)):
                writer.write(parts.read_group(g, columns, buffers=buffers))
    finally:
        buffers.close()
