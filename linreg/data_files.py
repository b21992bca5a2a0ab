"""Reading the user's data files, CSV or Parquet, as float64 columns: pyarrow reads, this module checks.

    header = read_header("houses.csv")                        # the column names
    X = read_columns("houses.parquet", ["area", "age"])       # (rows, 2) float64 tensor, DataError if bad
    write_with_column("new.csv", "prediction", y_hat, "out.parquet")  # the rows as read, one column more

- **Which format.** A file that starts with Parquet's magic bytes `PAR1` is Parquet, whatever its name;
  anything else is read as CSV (UTF-8, a header row of distinct names, a byte-order mark allowed).
- **CSV.** pyarrow's reader: multi-threaded, typed straight to float64, no Python per cell (a 1M-row
  file reads an order of magnitude faster than Python's csv module). Its errors name a row of its own counting, and it
  takes blank cells for nulls when asked to; so cells are read with no null values at all, and when pyarrow
  refuses a file, or it holds a NaN or an infinity, the file is read once more by `diagnose_csv`, in
  Python, to say where: `houses.csv, line 3, column 'age': 'five' is not a number`. That second reading
  happens only for a file that is bad (or that only Python reads, e.g. numbers padded with spaces).
- **Parquet** (linreg/parquet_files.py), a file or a folder of parts: numeric columns cast to float64,
  a row group at a time; one-line errors naming the column and the row.
- **Memory.** The result is the one float64 copy: a CSV table is turned into it a column at a time, each
  column dropped from Arrow's table and its memory handed back as it is copied; Parquet is read a row
  group at a time into it, each row put in its place in the `order` asked for (the training split first:
  linreg.file_data), so that the peak stays near one copy of the table, not two. A CSV file's reordering
  is a second copy (measured: docs/performance.md, "Your data files").
"""

import csv
import ctypes
import math
import sys
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path

import numpy as np
import torch

from linreg.errors import DataError
from linreg.fingerprint import fingerprint
from linreg.parquet_files import parquet_schema, read_parquet
from linreg.parquet_parts import ParquetParts, is_parts

PARQUET_MAGIC = b"PAR1"


def is_parquet(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == PARQUET_MAGIC


def open_csv(path: str | Path):
    # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name
    return Path(path).open(newline="", encoding="utf-8-sig")


def not_text(path: str | Path) -> DataError:
    return DataError(f"{path}: not a CSV file (binary data, or text that is not UTF-8)")


def read_header(path: str | Path) -> list[str]:
    """The column names: a CSV file's header row (stripped of spaces), or a Parquet file's (or parts') schema."""
    if is_parts(path):
        return ParquetParts.open(path).names
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if is_parquet(path):
        return parquet_schema(path).names
    try:
        with open_csv(path) as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError:
        raise not_text(path) from None
    if not header or not any(name.strip() for name in header):
        raise DataError(f"{path}: the file is empty; it needs a header row naming the columns")
    header = [name.strip() for name in header]
    first: dict[str, int] = {}  # name -> its first column: one pass, however wide the file
    for i, name in enumerate(header):
        if first.setdefault(name, i) != i:
            raise DataError(f"{path}: the header names column '{name}' twice (columns {first[name] + 1} and {i + 1})")
    return header


def data_fingerprint(path: str | Path, rows: int) -> dict:
    """linreg.fingerprint's of a file, or of every part of a folder or glob together."""
    return ParquetParts.open(path).fingerprint() if is_parts(path) else fingerprint(path, rows=rows)


def read_columns(path: str | Path, columns: list[str], order: Callable[[int], torch.Tensor] | None = None):
    """The named columns of a CSV or Parquet file (or of Parquet parts) as float64, (rows, len(columns));
    DataError if any is bad. order: a function of the number of rows n giving the order (n,) to store them
    in, row i of the result being row order[i] of the file, row-major. Parquet rows are put in their places
    as they are read: one copy of the data, not the data and its reordered copy. A CSV file is reordered
    once read: Arrow's table of it and ours are two copies at the peak anyway."""
    if is_parts(path) or (Path(path).is_file() and is_parquet(path)):
        return read_parquet(path, columns, order)
    header = read_header(path)
    names = set(header)
    for name in columns:
        if name not in names:
            raise DataError(f"{path}: no column '{name}' (the columns are: {', '.join(header)})")
    X = read_csv(path, header, columns)
    X = X if X is not None else diagnose_csv(path, header, columns)
    return X[order(len(X))] if order is not None else X


WIDE = 1000  # columns from which a CSV file is read on one thread


def bytes_per_row(path: str | Path) -> int:
    """A CSV file's bytes per line, from its first 64 KiB (its header's length where no line ends there)."""
    with open(path, "rb") as f:
        head = f.read(65536)
    lines = head.count(b"\n")
    return max(1, len(head) // lines) if lines else len(head)


def read_csv(path: str | Path, header: list[str], columns: list[str]) -> torch.Tensor | None:
    """pyarrow's reading of the columns, or None where it refuses the file or finds a non-finite value."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    # Arrow parses a file in blocks, at a cost per block and column: a block holds at least ~4096 rows, and
    # a wide file (many columns, few rows) is read on one thread, whose blocks need no merging.
    row_bytes = bytes_per_row(path)
    read = pacsv.ReadOptions(  # the names as read_header stripped them
        column_names=header,
        skip_rows=1,
        block_size=max(1 << 20, 4096 * row_bytes),
        use_threads=len(header) < WIDE,
    )
    convert = pacsv.ConvertOptions(
        include_columns=columns if columns != header else [],  # [] is every column: no lookup per name
        column_types=dict.fromkeys(columns, pa.float64()),
        null_values=[],  # a blank cell is an error, not a silent null
        quoted_strings_can_be_null=False,
    )
    pool = pa.system_memory_pool()  # the allocator whose freed memory release_freed_memory hands back

    def read_table():
        return pacsv.read_csv(path, read_options=read, convert_options=convert, memory_pool=pool)

    try:
        X = to_tensor(read_table, columns)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    return X if len(X) and bool(X.isfinite().all()) else None


def diagnose_csv(path: str | Path, header: list[str], columns: list[str]) -> torch.Tensor:
    """The columns read by Python's csv module, raising DataError at the first bad line (see the module
    docstring). Blank lines are skipped; a number may be padded with spaces."""
    where = [header.index(name) for name in columns]
    rows = []
    try:
        with open_csv(path) as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank lines
                if len(row) != len(header):
                    raise DataError(
                        f"{path}, line {reader.line_num}: {len(row)} fields where the header has {len(header)}"
                    )
                line = reader.line_num
                rows.append([number(path, line, name, row[i]) for name, i in zip(columns, where, strict=True)])
    except UnicodeDecodeError:
        raise not_text(path) from None
    if not rows:
        raise DataError(f"{path}: the header is there but no rows of data")
    return torch.tensor(rows, dtype=torch.float64)


def number(path: str | Path, line: int, column: str, cell: str) -> float:
    """A cell as a finite float: what Python's float reads, less `1_000`."""
    cell = cell.strip()
    if not cell:
        raise DataError(f"{path}, line {line}, column '{column}': the cell is blank; every cell needs a number")
    try:
        if "_" in cell:
            raise ValueError(cell)
        value = float(cell)
    except ValueError:
        raise DataError(f"{path}, line {line}, column '{column}': {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}, line {line}, column '{column}': {cell} is not a finite number")
    return value


FREE_EVERY = 16 * 2**20  # bytes of columns dropped together before their memory is handed back


def to_tensor(read: Callable, columns: list[str]) -> torch.Tensor:
    """(rows, len(columns)) float64 from the Arrow table that `read()` returns, built column by column so
    that the peak memory is about one copy of the data, not two: each column is copied into a (columns,
    rows) tensor, and the copied columns are dropped from the table and their memory handed back every
    FREE_EVERY bytes. (A function, not the table: this must hold the only reference to it, or dropping a
    column would free nothing.) Columns are taken and dropped by position, the order `columns` names them in:
    by name, each would cost a pass over a wide table's schema, per column. The result
    is that tensor transposed, a view stored column by column; gathering rows from it (the training split)
    copies them row by row."""
    table = read()
    if 8 * table.num_rows * table.num_columns <= FREE_EVERY:  # small: one copy of the whole at once, F-order
        batch = table.combine_chunks().to_batches()
        if batch:  # (rows, columns) float64, stored column by column, as below
            return torch.from_numpy(np.asarray(batch[0].to_tensor(row_major=False)).copy(order="F"))
    X = torch.empty(len(columns), table.num_rows, dtype=torch.float64)  # (columns, rows)
    copied, copied_bytes = 0, 0  # columns copied but still in the table, at its front
    for i in range(len(columns)):
        column = table.column(copied)  # float64: the CSV reader typed it
        X[i].numpy()[:] = column.to_numpy()  # Arrow's arrays are read-only: copied in, not wrapped
        copied, copied_bytes = copied + 1, copied_bytes + 8 * table.num_rows  # float64
        del column
        if copied_bytes >= FREE_EVERY or i == len(columns) - 1:
            table = table.select(range(copied, table.num_columns))  # the rest: the copied ones' buffers are freed
            copied, copied_bytes = 0, 0
            release_freed_memory()
    return X.T


def release_freed_memory(arrow: bool = True) -> None:
    """Hand memory freed by Arrow and numpy back to the operating system now (glibc's malloc_trim, and
    Arrow's own pool): without it the allocators keep the dropped columns for reuse, and they count in the
    process's memory as if still used. Elsewhere than glibc, Arrow's pool only. arrow=False: glibc's only
    (Arrow's next read then reuses what its pool kept, rather than asking the system again)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
    if arrow and "pyarrow" in sys.modules:  # Arrow's own allocator (mimalloc or jemalloc) keeps freed memory too
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def write_with_column(path: str | Path, name: str, values: torch.Tensor, output: str | Path | None) -> None:
    """The rows of `path` as read, with one more column `name` = values (n,), to `output`: Parquet if its
    name ends in .parquet, else CSV (stdout for None). A new file only: an existing `output` is an error.

    CSV to CSV keeps every cell as its text was; otherwise the rows go through an Arrow table (CSV columns
    typed as pyarrow infers them). Each value is written with every digit of its dtype."""
    parquet_out = output is not None and str(output).endswith(".parquet")
    if not is_parquet(path) and not parquet_out:
        with open_csv(path) as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
        # str of a numpy scalar: the shortest text that reads back as the same float32 or float64
        lines = [[*rows[0], name], *([*row, str(v)] for row, v in zip(rows[1:], values.numpy(), strict=True))]
        with Path(output).open("x", newline="") if output else nullcontext(sys.stdout) as f:  # "x": never overwrite
            csv.writer(f).writerows(lines)
        return
    import pyarrow as pa
    from pyarrow import csv as pacsv
    from pyarrow import parquet as pq

    table = pq.read_table(path) if is_parquet(path) else pacsv.read_csv(path)
    table = table.append_column(name, pa.array(values.numpy()))
    if parquet_out:
        with Path(output).open("xb") as f:
            pq.write_table(table, f)
    else:
        with Path(output).open("xb") if output else nullcontext(sys.stdout.buffer) as f:
            pacsv.write_csv(table, f)
