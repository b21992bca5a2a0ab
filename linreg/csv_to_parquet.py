"""A CSV file too large for memory, converted once to Parquet, streaming, so that it streams as Parquet does.

    folder = converted("big.csv", columns)     # $LINREG_CACHE/csv-<fingerprint>/part-00000.parquet

pyarrow's streaming CSV reader parses the file a block at a time (every used column as float64, a blank
cell an error, as `linreg.data_files` reads it), and each block goes to one Parquet file as row groups of
ROW_GROUP rows: memory stays a block. The folder is named by the CSV's fingerprint, so it is reused while
the CSV is unchanged, and made anew when it changes; it is written under a temporary name and renamed
when complete. A bad cell stops the conversion and is named as for any CSV file: the file is read again by
Python's csv module for the line and the column. A progress bar counts the bytes, on a terminal.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from linreg.data_files import bytes_per_row, diagnose_csv, read_header
from linreg.errors import DataError
from linreg.file_summary import cache_dir
from linreg.fingerprint import fingerprint

ROW_GROUP = 65536


def converted(path: str, columns: list[str], say=print) -> Path:
    """The Parquet folder holding `columns` of the CSV file, converted now if not already."""
    identity = json.dumps([os.path.abspath(path), fingerprint(path, rows=0), columns])
    folder = cache_dir() / f"csv-{hashlib.sha256(identity.encode()).hexdigest()[:24]}"
    if (folder / "part-00000.parquet").exists():
        return folder
    say(f"converting {path} to Parquet once, into {folder} (reused while the file is unchanged)")
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    try:
        write(path, columns, partial / "part-00000.parquet")
        with contextlib.suppress(OSError):  # another run made it meanwhile: theirs is the same
            partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def write(path: str, columns: list[str], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv
    from pyarrow import parquet as pq

    header = read_header(path)
    read = pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=max(1 << 22, 4096 * bytes_per_row(path)))
    convert = pacsv.ConvertOptions(
        include_columns=columns,
        column_types=dict.fromkeys(columns, pa.float64()),
        null_values=[],  # a blank cell is an error, not a silent null
        quoted_strings_can_be_null=False,
    )
    size = os.path.getsize(path)
    bar = progress(size)
    try:
        with open(path, "rb") as f, pq.ParquetWriter(out, pa.schema([(c, pa.float64()) for c in columns])) as writer:
            reader = pacsv.open_csv(f, read_options=read, convert_options=convert)
            for batch in reader:
                table = pa.Table.from_batches([batch])
                if not all(pc.all(pc.is_finite(column)).as_py() is not False for column in table):
                    raise ValueError("a value that is not finite")
                writer.write_table(table, row_group_size=ROW_GROUP)
                if bar is not None:
                    bar.update(f.tell() - bar.n)
    except (pa.ArrowInvalid, UnicodeDecodeError, ValueError):
        diagnose_csv(path, header, columns)  # names the line and the column (a DataError)
        raise DataError(f"{path}: not readable as CSV by pyarrow") from None
    finally:
        if bar is not None:
            bar.close()


def progress(total: int):
    """A tqdm bar of bytes on stderr, on a terminal only (a log file gets no redraws)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="to Parquet", file=sys.stderr, leave=False)
