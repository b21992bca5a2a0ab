"""A dataset of Parquet part files, as Spark, pandas, DuckDB and Polars write them, seen as one table.

    parts = ParquetParts.open("data/")            # a file, a folder (recursively) or a glob ("data/*.parquet")
    parts.names, parts.num_rows, parts.groups      # columns; rows; row groups (part, index, start, rows)
    X = parts.read_group(g, ["area", "age"])      # (rows, 2) float64 tensor, DataError if a cell is bad
    parts.fingerprint()                           # size, mtime, rows and content of every part, together

A folder is searched recursively; files whose name starts with `_` or `.` (`_SUCCESS`, `.part-0.crc`) are
skipped, and so are folders so named. The parts are taken in sorted path order: global row r is row r of
their concatenation. Every part must have the same columns, with the same types (one line names the part
that differs); a part with no rows is skipped, and said so in one warning line.
"""

import glob
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linreg.errors import DataError
from linreg.fingerprint import fingerprint
from linreg.parquet_files import as_float64, parquet_schema

GLOB_CHARACTERS = set("*?[")


def is_parts(path: str | Path) -> bool:
    """Whether --data names a folder or a glob rather than one file."""
    return Path(path).is_dir() or bool(GLOB_CHARACTERS & set(str(path)))


def part_files(path: str | Path) -> list[Path]:
    """The part files a folder or a glob names, sorted; DataError if none."""
    if Path(path).is_dir():
        root = Path(path)
        found = [p for p in root.rglob("*") if p.is_file() and not any(s[0] in "_." for s in p.relative_to(root).parts)]
    else:
        found = [Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()]
        found = [p for p in found if p.name[0] not in "_."]
    if not found:
        raise DataError(f"{path}: no data files there (names starting with _ or . are skipped)")
    return sorted(found)


@dataclass(frozen=True)
class Group:
    part: int  # index into ParquetParts.paths
    index: int  # row group within that part
    start: int  # its first global row
    rows: int


class ParquetParts:
    """See the module docstring."""

    def __init__(self, paths: list[Path], names: list[str], groups: list[Group], source: str) -> None:
        self.paths, self.names, self.groups, self.source = paths, names, groups, source
        self.num_rows = groups[-1].start + groups[-1].rows if groups else 0
        self.starts = torch.tensor([g.start for g in groups], dtype=torch.int64)  # (num_groups,)
        self.files: dict[int, object] = {}  # part -> its open pq.ParquetFile

    @classmethod
    def open(cls, path: str | Path) -> "ParquetParts":
        from pyarrow import parquet as pq

        paths = part_files(path) if is_parts(path) else [Path(path)]
        schema, groups, kept = None, [], []
        for p in paths:
            with open(p, "rb") as f:
                magic = f.read(4)
            if magic != b"PAR1":
                kind = (
                    "a folder or glob of --data holds Parquet parts only"
                    if is_parts(path)
                    else "streaming reads Parquet"
                )
                raise DataError(f"{p}: not a Parquet file; {kind}")
            this = parquet_schema(p)
            if schema is None:
                schema, first = this, p
            elif not this.equals(schema):
                raise DataError(f"{p}: its columns differ from {first}'s ({describe(this)} against {describe(schema)})")
            metadata = pq.ParquetFile(p).metadata
            if metadata.num_rows == 0:
                warnings.warn(f"{p}: an empty part (no rows); skipped", stacklevel=2)
                continue
            start = groups[-1].start + groups[-1].rows if groups else 0
            for i in range(metadata.num_row_groups):
                rows = metadata.row_group(i).num_rows
                if rows:
                    groups.append(Group(len(kept), i, start, rows))
                    start += rows
            kept.append(p)
        if not groups:
            raise DataError(f"{path}: the columns are there but no rows of data")
        return cls(kept, list(schema.names), groups, str(path))

    def parquet(self, part: int):
        from pyarrow import parquet as pq

        if part not in self.files:  # without pre-buffering, which keeps each open file's last ranges read
            self.files[part] = pq.ParquetFile(self.paths[part], pre_buffer=False)
        return self.files[part]

    def read_group(
        self, g: int, columns: list[str], dtype=torch.float64, center=None, scale=None, table=None
    ) -> torch.Tensor:
        """Row group g's columns, (rows, len(columns)) in dtype; DataError naming part, row and column. With
        center and scale ((len(columns),) each), (column - center) / scale, computed in float64 a column at
        a time, so that no float64 copy of the whole group is made besides the result. `table`: the group
        as pyarrow already read it, if the caller has it."""
        import pyarrow.compute as pc

        group = self.groups[g]
        path = self.paths[group.part]
        if table is None:
            table = self.parquet(group.part).read_row_group(group.index, columns=columns)
        table = table.select(columns)
        X = torch.empty(len(columns), group.rows, dtype=dtype)  # (columns, rows): a column is contiguous
        work = np.empty(group.rows) if center is not None else None  # one float64 buffer for every column
        for i, name in enumerate(columns):
            column = table.column(i)
            if column.null_count:
                row = self.row_in_part(group, pc.index(pc.is_null(column), True).as_py())
                missing = "a missing value (null); every cell needs a number"
                raise DataError(f"{path}, row {row}, column '{name}': {missing}")
            values = as_float64(path, name, column)  # (rows,) float64 numpy, read-only (Arrow's)
            # a NaN or infinity makes the sum one; so may finite values, rarely (an overflow): then look closer
            if not np.isfinite(values.sum()) and not np.isfinite(values).all():
                row = int(np.flatnonzero(~np.isfinite(values))[0])
                where = f"{path}, row {self.row_in_part(group, row)}, column '{name}'"
                raise DataError(f"{where}: {values[row]} is not a finite number")
            out = X[i].numpy()
            if center is None or (center[i] == 0 and scale[i] == 1):
                np.copyto(out, values, casting="unsafe")
            else:  # in float64, rounded once into dtype, as the in-memory path's (X - mean) / std
                np.divide(np.subtract(values, float(center[i]), out=work), float(scale[i]), out=work)
                X[i].copy_(torch.from_numpy(work))  # torch's cast is faster than numpy's into `out`
        return X.T

    def row_in_part(self, group: Group, row: int) -> int:
        """A row's number in its part file, from 1."""
        metadata = self.parquet(group.part).metadata
        return sum(metadata.row_group(i).num_rows for i in range(group.index)) + row + 1

    def column_range(self, name: str) -> tuple[float, float] | None:
        """(min, max) of a column over every row group, from the files' statistics; None where one lacks them."""
        low, high = float("inf"), float("-inf")
        column = self.names.index(name)
        for group in self.groups:
            statistics = self.parquet(group.part).metadata.row_group(group.index).column(column).statistics
            if statistics is None or not statistics.has_min_max:
                return None
            low, high = min(low, float(statistics.min)), max(high, float(statistics.max))
        return low, high

    def fingerprint(self) -> dict:
        """One fingerprint for all the parts (linreg.fingerprint's keys): any part changed changes it."""
        each = [fingerprint(p, rows=self.parquet(i).metadata.num_rows) for i, p in enumerate(self.paths)]
        digest = hashlib.sha256("".join(f"{f['path']}:{f['ends']}" for f in each).encode())
        return {
            "path": os.path.abspath(self.source),
            "size": sum(f["size"] for f in each),
            "mtime_ns": max(f["mtime_ns"] for f in each),
            "rows": self.num_rows,
            "ends": digest.hexdigest(),
        }


def describe(schema) -> str:
    return ", ".join(f"{field.name}: {field.type}" for field in schema)
