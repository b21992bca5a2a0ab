"""Reading Parquet files for linreg.data_files: the schema, and numeric columns as float64, one at a time.

    names = parquet_schema("houses.parquet").names
    X = read_parquet("houses.parquet", ["area", "age"])    # (rows, 2) float64 tensor, DataError if bad

Columns of integers, floats or decimals are cast to float64; a column of another type, a missing value
(null) or a NaN/infinity is one line naming the column and the row (Parquet has rows, not lines; the first
row is row 1). The columns are read one at a time (the format stores them apart): at any moment the result
and one column are in memory, not the whole table besides the result.
"""

import warnings
from pathlib import Path

import torch

from linreg.errors import DataError


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


def read_parquet(path: str | Path, columns: list[str]) -> torch.Tensor:
    """The columns of a Parquet file, one at a time (the format stores them apart): at any moment the result
    and one column in memory, not the whole table besides the result."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({str(e).strip().splitlines()[0]})") from None
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path}: the columns are there but no rows of data")
    for name in columns:
        kind = parquet.schema_arrow.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            raise DataError(f"{path}, column '{name}': its values are {kind}, not numbers")
    X = torch.empty(len(columns), parquet.metadata.num_rows, dtype=torch.float64)  # (columns, rows)
    for i, name in enumerate(columns):
        column = parquet.read(columns=[name]).column(0)
        if column.null_count:
            row = pc.index(pc.is_null(column), True).as_py() + 1
            raise DataError(f"{path}, row {row}, column '{name}': a missing value (null); every cell needs a number")
        X[i].numpy()[:] = as_float64(path, name, column)  # Arrow's arrays are read-only: copied in
    X = X.T  # (rows, columns), stored column by column, as to_tensor makes it
    bad = (~X.isfinite()).nonzero()
    if len(bad):
        row, i = bad[0].tolist()
        raise DataError(f"{path}, row {row + 1}, column '{columns[i]}': {X[row, i].item()} is not a finite number")
    return X


def as_float64(path: str | Path, name: str, column):
    """A numeric Parquet column as float64 numbers. Integers beyond 2⁵³ have no exact float64: they are
    rounded to the nearest, and a warning says so in one line (Arrow's own cast refuses them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) and len(column) > column.null_count:
        biggest = max(abs(pc.min(column).as_py()), abs(pc.max(column).as_py()))
        if biggest > 2**53:
            warnings.warn(
                f"{path}, column '{name}': integers up to {biggest} are beyond float64's 2⁵³ and are rounded "
                "to the nearest float64",
                stacklevel=2,
            )
            return column.cast(pa.float64(), safe=False).to_numpy()
    if pa.types.is_float64(column.type):  # no cast: Arrow's own buffer where it is one chunk
        return column.to_numpy()
    return column.cast(pa.float64()).to_numpy()
