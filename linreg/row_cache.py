"""The row cache: the columns of streamed Parquet parts as read, row-major float64, written by the pass.

    with RowCacheWriter(path, rows, width) as writer:   # by the pass (linreg.file_summary), group by group
        writer.write(table)                              # (rows, width) float64: a group's columns, as read
    cache = RowCache.open(path, rows, width)             # None unless whole
    cache.read_into(start, X, y, center, scale, buffers)   # rows [start, start + len(X)), standardized

Every epoch, a stream reads each row group it trains on (linreg.row_group_pool). From the Parquet files,
that is a decode by Arrow, a standardization, and a transpose into rows: on 2 cores, as much CPU as
training itself (docs/performance.md). From this cache, a group is one contiguous read, from the page
cache while the files fit in it, and the same standardization: the same bits as read_group's, for each
cell is (x − mean) / std in float64, rounded once into the training dtype, as there. Its standardized
copy for the run's dtype (linreg.training_rows), made from it once before training, spares the epochs
even that arithmetic; the stream reads this cache itself where the copy has no room.

It costs disk, 8 bytes per cell (about the size of the Parquet files of random float64 data; more where
they compress well): it is written only where the cache folder keeps room for it and a margin
(`room_for`), and never by the processes of a shared pass (each reads a share). A cache of other files or
columns is another name; one of these files before they changed, and its standardized copies, are
removed when the new one is written, and so is the temporary copy of a run killed while writing one.
"""

import contextlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from linreg.read_buffers import ReadBuffers

MARGIN = 1 << 30  # bytes the cache folder keeps free beside a row cache
CHUNK_BYTES = 1 << 21  # float64 bytes of rows read at a time: a buffer that stays in the core's cache
FILES = "decodes the Parquet files"  # what an epoch does without a row cache


def room_for(folder: Path, size: int) -> bool:
    """Whether the folder's disk has `size` bytes free, and MARGIN more."""
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(folder).free >= size + MARGIN


class RowCacheWriter:
    """Writes a row cache group after group, to a new name renamed into place when whole: a run killed
    while writing, or runs writing the same cache at once, never leave a partial cache under its name. A
    write that fails (a disk that filled meanwhile) abandons the cache in one warning line, not the run."""

    def __init__(self, path: Path, rows: int, width: int, itemsize: int = 8, instead: str = FILES) -> None:
        self.path, self.size, self.instead = path, rows * width * itemsize, instead
        self.temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.file = None

    def __enter__(self) -> "RowCacheWriter":
        for left in self.path.parent.glob(f".{family(self.path)}-*.tmp"):
            pid = left.suffixes[-2][1:]
            if pid.isdigit() and not alive(int(pid)):  # a run killed while writing: gigabytes nobody renames
                left.unlink(missing_ok=True)
        try:
            self.file = open(self.temporary, "wb")  # closed in __exit__
        except OSError as e:
            self.abandon(e)
        return self

    def write(self, table) -> None:
        """A group's columns (rows, width) float64 (a tensor or an array, any layout): written as rows."""
        if self.file is None:  # abandoned
            return
        try:
            self.file.write(np.ascontiguousarray(np.asarray(table)).data)
        except OSError as e:
            self.abandon(e)

    def write_at(self, offset: int, array: np.ndarray) -> None:
        """A contiguous array's bytes at this offset of the file (linreg.training_rows writes two sections)."""
        if self.file is None:  # abandoned
            return
        try:
            data, done = memoryview(array).cast("B"), 0
            while done < len(data):
                done += os.pwrite(self.file.fileno(), data[done:], offset + done)
        except OSError as e:
            self.abandon(e)

    def abandon(self, error: OSError) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
        self.temporary.unlink(missing_ok=True)
        warnings.warn(
            f"{self.path.parent}: the row cache could not be written ({error.strerror or error}); every epoch "
            f"{self.instead} instead, which is slower",
            stacklevel=3,
        )

    def __exit__(self, kind, error, traceback) -> None:
        if self.file is None:  # abandoned: nothing to keep
            return
        try:
            self.file.close()
            whole = kind is None and self.temporary.stat().st_size == self.size
        except OSError as e:  # the last bytes not flushed; or the copy removed meanwhile, as a killed run's
            self.abandon(e)  # by a run on another machine sharing the cache folder, where this pid is not alive
            return
        if whole:
            for old in self.path.parent.glob(f"{family(self.path)}-*"):
                # this data before it changed: never read again (a folder, a held-out copy, is left as it is)
                if old.name.split(".")[0] != self.path.name.split(".")[0] and not old.is_dir():
                    old.unlink(missing_ok=True)
            try:
                os.replace(self.temporary, self.path)
            except OSError as e:  # removed meanwhile, as above
                self.abandon(e)
        else:
            self.temporary.unlink(missing_ok=True)


class RowCache:
    """A whole row cache (the module docstring), read with pread: no file position is shared, so a stream's
    reading thread and its training thread (which reads a group itself rather than wait) may read at once.
    The file stays open while the cache is in use: one removed meanwhile (a cleared cache) is still read."""

    def __init__(self, path: Path, width: int, fd: int | None = None) -> None:
        self.path, self.width, self.fd = path, width, fd

    @classmethod
    def open(cls, path: Path | None, rows: int, width: int) -> "RowCache | None":
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # not written (no room, a shared pass), or removed since: the stream reads the files
            return None
        if os.fstat(fd).st_size != rows * width * 8:  # another size: not this data's, whole
            os.close(fd)
            return None
        return cls(path, width, fd)

    def __getstate__(self) -> dict:  # a copy in another process (a spawned one) opens the file itself
        return self.__dict__ | {"fd": None}

    def __del__(self) -> None:
        if self.fd is not None:
            os.close(self.fd)

    def read_into(self, start: int, X: np.ndarray, y: np.ndarray, center, scale, buffers: ReadBuffers) -> None:
        """Rows [start, start + len(X)) standardized into X (n, width - 1) and y (n, 1), both in the training
        dtype: (cells - center) / scale in float64 ((width,) tensors; the target's 0 and 1), rounded once."""
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        d, step = self.width - 1, max(1, CHUNK_BYTES // (8 * self.width))
        center, scale = center.numpy(), scale.numpy()
        flat = buffers.get("rows", (1, step * self.width), np.float64)[0]  # contiguous whatever it held before
        for first in range(0, len(X), step):
            n = min(step, len(X) - first)
            cells = flat[: n * self.width].reshape(n, self.width)  # (n, width), as read
            read_exactly(self.fd, memoryview(cells).cast("B"), (start + first) * self.width * 8)
            np.subtract(cells, center, out=cells)
            np.divide(cells[:, :d], scale[:d], out=X[first : first + n], casting="unsafe")
            np.divide(cells[:, d:], scale[d:], out=y[first : first + n], casting="unsafe")


def family(path: Path) -> str:
    """The name of a row cache without the files' digest, `rows-<summary>`: its versions, and its
    standardized copies (linreg.training_rows), are `rows-<summary>-<digest>.<kind>`."""
    return path.name.split(".")[0].rsplit("-", 1)[0]


def alive(pid: int) -> bool:
    """Whether a process of this id runs (it may be another process that took the id since: then alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True


def read_exactly(fd: int, into: memoryview, offset: int) -> None:
    """len(into) bytes of the file from offset (pread may return fewer)."""
    done = 0
    while done < len(into):
        got = os.preadv(fd, [into[done:]], offset + done)
        if got == 0:
            raise OSError(f"row cache: {len(into) - done} bytes missing at offset {offset + done}")
        done += got


def row_cache_writer(path: Path, rows: int, width: int, say=print) -> RowCacheWriter | None:
    """A writer of the row cache at path, said in one line (`say`); or None, said in one warning line, where
    its disk lacks room."""
    size = rows * width * 8
    if room_for(path.parent, size):
        say(f"writing the row cache once, {size / 1e9:.2f} GB into {path.parent} (reused while the files are "
            "unchanged; --no-row-cache: none)")  # fmt: skip
        return RowCacheWriter(path, rows, width)
    warnings.warn(
        f"{path.parent}: no room for a row cache of {size / 1e9:.1f} GB and 1 GB to spare; every epoch "
        f"{FILES} instead, which is slower (--no-row-cache: never write one)",
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
