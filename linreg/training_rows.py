"""The row cache standardized for training: what a stream's epochs read, two preads per row group.

    rows = training_rows(summary.rows, num_rows, width, center, scale, torch.float32, write=True)
    rows.read_into(start, X, y, center, scale, buffers)   # rows [start, start + n): X (n, d), y (n, 1)

The pass's row cache (linreg.row_cache) holds the columns as read, in float64. A group read from it is a
pread and then (x − mean) / std in float64, rounded into the training dtype; at 100 features that
arithmetic, on the core beside training's, slows an epoch more than the read does (docs/performance.md).
This file holds its result, made once from the row cache (`write_training_rows`): the same bits, so that
an epoch's reading thread only copies bytes. Layout: every row's features, row-major (rows, d), then every
row's target (rows,), in the training dtype: a group's X and y are one pread each, straight into the
stream's pool.

It is named by the row cache's name, the dtype, and a hash of the center and scale it was made with, and
it goes with the row cache when the files change (linreg.row_cache.RowCacheWriter). Disk: 4 bytes a cell
in float32, 8 in float64, beside the row cache's 8. Where there is no room, or the disk fills while it is
written, one warning line says so and the stream standardizes the row cache's rows as it reads them.

The pass's copy of the held-out rows (Parquet, linreg.file_summary), read after every epoch, gets the same
standardized file, made from it (`write_standardized_parts`): `heldout-<summary>-<digest>.<dtype>-<hash>`,
which the evaluation reads a range at a time (linreg.row_group_pool's `read_range`); without it, the
evaluation decodes the copy.
"""

import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from linreg.read_buffers import ReadBuffers
from linreg.row_cache import RowCache, RowCacheWriter, read_exactly, room_for

STANDARDIZES = "standardizes the row cache's rows"  # what an epoch does without this file
ROWS_AT_A_TIME = 65536  # rows standardized per read of the row cache while writing


class TrainingRows:
    """A whole standardized copy of a row cache (the module docstring), read with pread, kept open."""

    def __init__(self, path: Path, rows: int, d: int, fd: int | None = None) -> None:
        self.path, self.rows, self.d, self.fd = path, rows, d, fd

    @classmethod
    def open(cls, path: Path, rows: int, d: int, dtype: torch.dtype) -> "TrainingRows | None":
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # not written yet, or removed
            return None
        if os.fstat(fd).st_size != rows * (d + 1) * dtype.itemsize:  # partial, or not this data's
            os.close(fd)
            return None
        return cls(path, rows, d, fd)

    def read_into(self, start: int, X: np.ndarray, y: np.ndarray, center=None, scale=None, buffers=None) -> None:
        """Rows [start, start + len(X)) into X (n, d) and y (n, 1), C-contiguous, in the file's dtype. center
        and scale are the ones it was made with (its name holds their hash): taken to be read as a RowCache."""
        if len(X) == 0:  # no rows (a resumed epoch's empty block): nothing to read, and no view to cast
            return
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY)
        read_exactly(self.fd, memoryview(X).cast("B"), start * self.d * X.itemsize)
        read_exactly(self.fd, memoryview(y).cast("B"), (self.rows * self.d + start) * y.itemsize)

    def __getstate__(self) -> dict:  # a copy in another process (a spawned one) opens the file itself
        return self.__dict__ | {"fd": None}

    def __del__(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def training_rows_path(row_cache: Path, center: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> Path:
    """rows-<summary>-<digest>.<dtype>-<hash of center and scale>, beside the row cache."""
    numbers = hashlib.sha256(torch.cat([center, scale]).double().numpy().tobytes()).hexdigest()[:12]
    return row_cache.with_name(f"{row_cache.name.split('.')[0]}.{str(dtype).removeprefix('torch.')}-{numbers}")


def training_rows(
    row_cache: Path | None, rows: int, width: int, center, scale, dtype: torch.dtype, write: bool = False, say=print
) -> "TrainingRows | RowCache | None":
    """What a stream reads its rows from: the standardized copy where it is whole (written first where
    `write` and there is room), else the row cache itself, else None (the Parquet files).
    center, scale: (width,) float64, the target's 0 and 1 last (linreg.row_group_pool.RowGroupStream)."""
    if row_cache is None:
        return None
    path = training_rows_path(row_cache, center, scale, dtype)
    if (ready := TrainingRows.open(path, rows, width - 1, dtype)) is not None:
        return ready
    raw = RowCache.open(row_cache, rows, width)
    if raw is None or not write:
        return raw
    return write_training_rows(raw, path, rows, width - 1, center, scale, dtype, say) or raw


def write_training_rows(
    raw: RowCache, path: Path, rows: int, d: int, center, scale, dtype: torch.dtype, say=print
) -> TrainingRows | None:
    """The standardized copy of the row cache, written from it ROWS_AT_A_TIME rows at a time."""
    X = torch.empty(ROWS_AT_A_TIME, d, dtype=dtype).numpy()  # (step, d), (step, 1): reused chunk after chunk
    y = torch.empty(ROWS_AT_A_TIME, 1, dtype=dtype).numpy()

    def chunks(buffers: ReadBuffers) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for start in range(0, rows, ROWS_AT_A_TIME):
            n = min(ROWS_AT_A_TIME, rows - start)
            raw.read_into(start, X[:n], y[:n], center, scale, buffers)
            yield start, X[:n], y[:n]

    return written(path, rows, d, dtype, chunks, "the row cache", STANDARDIZES, say)


def write_standardized_parts(
    parts, columns: list[str], path: Path, center, scale, dtype: torch.dtype, say=print
) -> TrainingRows | None:
    """The same layout made from Parquet parts, a group at a time (ParquetParts.read_group standardizes
    them as a stream does): for the pass's copy of the held-out rows, read after every epoch."""
    d = len(columns) - 1

    def chunks(buffers: ReadBuffers) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for g, group in enumerate(parts.groups):
            cells = parts.read_group(g, columns, dtype, center, scale, buffers=buffers).numpy()  # (rows, d + 1)
            yield group.start, np.ascontiguousarray(cells[:, :d]), np.ascontiguousarray(cells[:, d:])

    return written(path, parts.num_rows, d, dtype, chunks, "the held-out rows", "decodes their Parquet copy", say)


def written(
    path: Path, rows: int, d: int, dtype: torch.dtype, chunks, what: str, instead: str, say
) -> TrainingRows | None:
    """The file at path from chunks(buffers) → (first row, X (n, d), y (n, 1)), under a temporary name
    renamed into place when whole; None, in one warning line, where its disk lacks room or fills meanwhile
    (`instead`: what the epochs do then)."""
    size, name = rows * (d + 1) * dtype.itemsize, str(dtype).removeprefix("torch.")
    if not room_for(path.parent, size):
        warnings.warn(
            f"{path.parent}: no room for a {name} copy of {what}, {size / 1e9:.1f} GB and 1 GB to spare; "
            f"every epoch {instead} instead, which is slower",
            stacklevel=4,
        )
        return None
    say(f"standardizing {what} once for {name} training, {size / 1e9:.2f} GB into {path.parent}")
    buffers = ReadBuffers()
    try:
        with RowCacheWriter(path, rows, d + 1, dtype.itemsize, instead=instead) as writer:
            for start, X, y in chunks(buffers):
                writer.write_at(start * d * dtype.itemsize, X)
                writer.write_at((rows * d + start) * dtype.itemsize, y)
    finally:
        buffers.close()
    return TrainingRows.open(path, rows, d, dtype)
