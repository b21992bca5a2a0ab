"""Reading Parquet files for linreg.data_files: the schema, and numeric columns as float64, one at a time.

    names = parquet_schema("houses.parquet").names
    X = read_parquet("houses.parquet", ["area", "age"])    # (rows, 2) float64 tensor, DataError if bad

A file or a folder of parts (linreg.parquet_parts). Columns of integers, floats or decimals are cast to
float64; a column of another type, a missing value (null) or a NaN/infinity is one line naming the column
and the row (Parquet has rows, not lines; the first row of each file is row 1). The data are read a row
group at a time into the result: at any moment the result and one group are in memory.
"""

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from linreg.errors import DataError
from linreg.read_buffers import ReadBuffers


def parquet_schema(path: str | Path):
    """A Parquet file's columns and their types (pa.Schema), from its footer."""
    return parquet_metadata(path).schema.to_arrow_schema()


def parquet_metadata(path: str | Path):
    """A Parquet file's footer (pq.FileMetaData): its schema, row groups and their statistics."""
    import pyarrow as pa
    from pyarrow import parquet as pq

    try:
        return pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({str(e).strip().splitlines()[0]})") from None


def checked_parquet_columns(path: str | Path, parts, columns: list[str]) -> None:
    """DataError naming the first of `columns` that the parts (a linreg.parquet_parts.ParquetParts) lack, or
    whose values are not numbers (integers, floats or decimals)."""
    import pyarrow as pa

    missing = [name for name in columns if name not in parts.names]
    if missing:
        raise DataError(f"{path}: no column '{missing[0]}' (the columns are: {', '.join(parts.names)})")
    schema = parts.metadata[0].schema.to_arrow_schema()  # every part's: ParquetParts.open checks
    for name in columns:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            raise DataError(f"{path}, column '{name}': its values are {kind}, not numbers")


def read_parquet(path: str | Path, columns: list[str], order: Callable[[int], torch.Tensor] | None = None):
    """The columns of a Parquet file, or of parts (linreg.parquet_parts), as a (rows, len(columns)) float64
    tensor, read a row group at a time into it: in memory, the result and one group.

    order=None: the rows as stored, the tensor stored column by column (as data_files.to_tensor makes it).
    order: a function of the number of rows n, giving the order (n,) to store them in (row i of the result
    is row order[i] of the data), the tensor row-major; each group's rows are copied to their places, so that
    reordering (the training split first) needs no second copy of the data."""
    from linreg.parquet_parts import ParquetParts  # here: that module imports this one

    parts = ParquetParts.open(path)
    checked_parquet_columns(path, parts, columns)
    n, d, buffers = parts.num_rows, len(columns), ReadBuffers()  # its helper decodes ahead (read_group)
    try:
        if order is None:
            X = torch.empty(d, n, dtype=torch.float64).T  # (rows, columns): each group's columns written in place
            for g, group in enumerate(parts.groups):
                parts.read_group(g, columns, out=X[group.start : group.start + group.rows].numpy(), buffers=buffers)
            return X
        where = torch.empty(n, dtype=torch.int64)
        where[order(n)] = torch.arange(n)  # (n,): the result's row for each row of the data
        X = torch.empty(n, d, dtype=torch.float64)
        for g, group in enumerate(parts.groups):
            block = buffers.get("group", (d, group.rows), np.float64).T  # (rows, columns), reused group after group
            parts.read_group(g, columns, out=block, buffers=buffers)
            X.index_copy_(0, where[group.start : group.start + group.rows], torch.from_numpy(block))
        return X
    finally:
        buffers.close()


def as_float64(path: str | Path, name: str, column):
    """A numeric Parquet column (of one row group) as float64 numbers. Integers beyond 2⁵³ have no exact
    float64: they are rounded to the nearest, and a warning says so in one line (Arrow's own cast refuses
    them), the same line for every row group of the file, which Python shows once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) and len(column) > column.null_count:
        biggest = max(abs(pc.min(column).as_py()), abs(pc.max(column).as_py()))
        if biggest > 2**53:
            warnings.warn(
                f"{path}, column '{name}': integers beyond float64's 2⁵³ are rounded to the nearest float64",
                stacklevel=2,
            )
            return column.cast(pa.float64(), safe=False).to_numpy()
    if pa.types.is_float64(column.type):  # no cast: Arrow's own buffer where it is one chunk
        return column.to_numpy()
    return column.cast(pa.float64()).to_numpy()
