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
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linreg.errors import DataError
from linreg.fingerprint import fingerprint
from linreg.parquet_files import as_float64, parquet_metadata
from linreg.read_buffers import ReadBuffers

GLOB_CHARACTERS = set("*?[")
COLUMN_BYTES = 3 << 20  # float64 bytes of the columns Arrow decodes together: 6 at 65,536 rows


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

    def __init__(self, paths: list[Path], names: list[str], groups: list[Group], source: str, metadata: list) -> None:
        self.paths, self.names, self.groups, self.source = paths, names, groups, source
        self.metadata = metadata  # each part's pq.FileMetaData, read once by `open`
        self.num_rows = groups[-1].start + groups[-1].rows if groups else 0
        self.starts = torch.tensor([g.start for g in groups], dtype=torch.int64)  # (num_groups,)

    @classmethod
    def open(cls, path: str | Path) -> "ParquetParts":
        paths = part_files(path) if is_parts(path) else [Path(path)]
        schema, groups, kept, metadatas = None, [], [], []
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
            metadata = parquet_metadata(p)  # the footer: read once, here
            this = metadata.schema.to_arrow_schema()
            if schema is None:
                schema, first = this, p
            elif not this.equals(schema):
                raise DataError(f"{p}: its columns differ from {first}'s ({describe(this)} against {describe(schema)})")
            if metadata.num_rows == 0:
                if is_parts(path):  # one file alone: the error below says it
                    warnings.warn(f"{p}: an empty part (no rows); skipped", stacklevel=2)
                continue
            start = groups[-1].start + groups[-1].rows if groups else 0
            for i in range(metadata.num_row_groups):
                rows = metadata.row_group(i).num_rows
                if rows:
                    groups.append(Group(len(kept), i, start, rows))
                    start += rows
            kept.append(p)
            metadatas.append(metadata)
        if not groups:
            raise DataError(f"{path}: the columns are there but no rows of data")
        return cls(kept, list(schema.names), groups, str(path), metadatas)

    def read_table(self, g: int, columns: list[str] | None = None):
        """Row group g as pyarrow reads it (every column, or `columns`): `with self.mapped(g) as read:
        read(columns)` for several reads of one group."""
        with self.mapped(g) as read:
            return read(columns)

    @contextmanager
    def mapped(self, g: int):
        """A function reading columns of row group g, its part memory-mapped meanwhile: mapped, Arrow decodes
        the pages where they lie rather than copying them in first (~1.5 × the throughput of a buffered
        read), and unmapped after, so that the process keeps no pages of the files. The footer is the one
        `open` read."""
        import pyarrow as pa
        from pyarrow import parquet as pq

        group = self.groups[g]
        with pa.memory_map(str(self.paths[group.part])) as source:
            parquet = pq.ParquetFile(source, metadata=self.metadata[group.part])
            yield lambda columns=None: parquet.read_row_group(group.index, columns=columns)

    def read_group(
        self,
        g: int,
        columns: list[str],
        dtype=torch.float64,
        center=None,
        scale=None,
        table=None,
        out=None,
        buffers: "ReadBuffers | None" = None,
    ) -> torch.Tensor:
        """Row group g's columns, (rows, len(columns)) in dtype (float32 or float64); DataError naming part, row
        and column. With center and scale ((len(columns),) each), (column - center) / scale, computed in
        float64 and rounded once into dtype, as the in-memory path's (X - mean) / std. `table`: the group as
        pyarrow already read it, if the caller has it. `out`: a (rows, len(columns)) numpy array of dtype to
        write into (a slot of a stream's pool); else a new one, stored column by column. `buffers`: arrays to
        reuse from one read to the next, and a helper thread (linreg.read_buffers; a stream's reading thread's).

        The columns are decoded a few at a time (COLUMN_BYTES of float64 each): little memory besides the
        result. With buffers, the helper decodes the next block while this thread standardizes one: two
        blocks in memory. Each column is standardized in two numpy calls through one float64 row that stays
        in the core's cache, into its row of a column-major array: out's own columns where they are
        contiguous; for a row-major out with buffers, a copy of the group, transposed into out at the end,
        half of it on the helper (numpy transposes a whole group ~2 × faster than a few columns at a time
        into rows ~400 bytes apart); without buffers, out's strided columns. numpy does the
        arithmetic, not torch: streams read on a background thread, where a torch CPU op would start a
        second OpenMP team that slows every parallel op of the training thread several times over
        (docs/performance.md)."""
        group = self.groups[g]
        if out is None:
            out = np.empty((len(columns), group.rows), dtype=torch.empty(0, dtype=dtype).numpy().dtype).T
        # (len(columns), rows): out's columns as rows; for a row-major out, with buffers, a copy to transpose
        transpose = buffers is not None and not out.T.flags.c_contiguous
        by_column = buffers.get("by_column", out.T.shape, out.dtype) if transpose else out.T
        step = max(1, COLUMN_BYTES // (8 * group.rows))
        blocks = [columns[j : j + step] for j in range(0, len(columns), step)]
        with nullcontext(table.select) if table is not None else self.mapped(g) as read:
            # with the caller's buffers, the next block is decoded while this one is standardized; a table
            # given is decoded already
            ahead = buffers is not None and table is None
            buffers = buffers if buffers is not None else ReadBuffers()
            decoded = buffers.decoded(read, blocks, ahead)
            with closing(decoded):  # its reads end before the map does
                for j, block in zip(range(0, len(columns), step), decoded, strict=True):
                    self.standardize_into(group, block, by_column[j : j + step], center, scale, j, buffers)
                    del block  # before the next is decoded: two blocks in memory at most
        if transpose:
            buffers.transpose(out, by_column)
        return torch.from_numpy(out)

    def standardize_into(self, group: Group, table, block, center, scale, first: int, buffers) -> None:
        """The columns of `table` into block (columns, rows): checked, standardized with center and scale
        from their index `first` on."""
        import pyarrow.compute as pc

        path = self.paths[group.part]
        for i, name in enumerate(table.column_names):
            if table.column(i).null_count:
                row = self.row_in_part(group, pc.index(pc.is_null(table.column(i)), True).as_py())
                missing = "a missing value (null); every cell needs a number"
                raise DataError(f"{path}, row {row}, column '{name}': {missing}")
        cells = [as_float64(path, name, table.column(i)) for i, name in enumerate(table.column_names)]
        with np.errstate(over="ignore", invalid="ignore"):  # a bad cell is named below, not warned about here
            if center is None:
                for row, column in zip(block, cells, strict=True):
                    np.copyto(row, column, casting="unsafe")  # rounded once into block's dtype
            else:
                # column by column through one float64 row, which stays in the core's cache: the data go
                # through memory twice (read, and written rounded once), not four times as a block's would
                centers = center[first : first + len(cells)].tolist()
                scales = scale[first : first + len(cells)].tolist()
                centered = buffers.get("float64", (1, block.shape[1]), np.float64)[0]
                for row, column, c, s in zip(block, cells, centers, scales, strict=True):
                    np.subtract(column, c, out=centered)
                    np.divide(centered, s, out=row, casting="unsafe")
            # a NaN or infinity in a cell makes the sum one; so may an overflow of finite cells, rarely:
            # then look closer, at the cells as read
            finite = np.isfinite(block.sum())
        if not finite:
            for name, column in zip(table.column_names, cells, strict=True):
                if not np.isfinite(column).all():
                    row = int(np.flatnonzero(~np.isfinite(column))[0])
                    where = f"{path}, row {self.row_in_part(group, row)}, column '{name}'"
                    raise DataError(f"{where}: {column[row]} is not a finite number")

    def row_in_part(self, group: Group, row: int) -> int:
        """A row's number in its part file, from 1."""
        metadata = self.metadata[group.part]
        return sum(metadata.row_group(i).num_rows for i in range(group.index)) + row + 1

    def column_range(self, name: str) -> tuple[float, float] | None:
        """(min, max) of a column over every row group, from the files' statistics; None where one lacks them."""
        low, high = float("inf"), float("-inf")
        column = self.names.index(name)
        for group in self.groups:
            statistics = self.metadata[group.part].row_group(group.index).column(column).statistics
            if statistics is None or not statistics.has_min_max:
                return None
            low, high = min(low, float(statistics.min)), max(high, float(statistics.max))
        return low, high

    def fingerprint(self) -> dict:
        """One fingerprint for all the parts (linreg.fingerprint's keys): any part changed changes it."""
        each = [fingerprint(p, rows=self.metadata[i].num_rows) for i, p in enumerate(self.paths)]
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
