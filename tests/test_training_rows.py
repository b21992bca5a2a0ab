"""The row cache's copy standardized for training (linreg.training_rows): what a stream's epochs read. The
same bits as a group read from the files; named by the dtype and the standardization; gone with the row
cache when a file changes; never read partial; skipped, in one warning line, where the disk has no room or
fills, and the stream then standardizes the row cache's rows as it reads them. The held-out rows' copy gets
the same, and the evaluation reads it a range at a time to the same bits."""

import errno
import json
import os

import numpy as np
import pytest
import torch

import linreg.training_rows
from linreg.file_summary import summarize
from linreg.parquet_parts import ParquetParts
from linreg.read_buffers import ReadBuffers
from linreg.row_cache import RowCache
from linreg.row_group_pool import RowGroupStream, columns_standardization
from linreg.training_rows import TrainingRows, training_rows, training_rows_path
from tests.test_parquet_parts import write_parts
from tests.test_row_cache import COLUMNS, train

pytestmark = pytest.mark.usefixtures("cache")  # tests/conftest.py: a cache folder of each test's own


def standardized(folder) -> list:
    return sorted(p.name for p in folder.glob("rows-*.float*")) if folder.exists() else []


def prepared(tmp_path, dtype=torch.float32, write=True):
    """(parts, row cache path, center, scale, what training_rows gives) of write_parts' data."""
    parts = ParquetParts.open(tmp_path / "data")
    summary = summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True)
    center, scale = columns_standardization(summary.mean, summary.std)
    rows = training_rows(summary.rows, parts.num_rows, 4, center, scale, dtype, write, say=lambda line: None)
    return parts, summary.rows, center, scale, rows


def test_a_group_read_from_the_standardized_copy_is_the_same_bits_as_from_the_files(tmp_path, monkeypatch):
    # catches: y's section at a wrong offset, X rows of another group or chunk, a standardization in float32
    # or rounded twice, the target standardized like a feature, a float32 copy read for float64 training
    monkeypatch.setattr(linreg.training_rows, "ROWS_AT_A_TIME", 500)  # written in chunks, a short last one
    write_parts(tmp_path / "data", sizes=(1000, 700, 313), row_group_size=300)  # unequal groups and files
    for dtype in (torch.float32, torch.float64):
        parts, raw, center, scale, rows = prepared(tmp_path, dtype)
        assert isinstance(rows, TrainingRows) and rows.path.stat().st_size == parts.num_rows * 4 * dtype.itemsize
        for g, group in enumerate(parts.groups):
            X, y = torch.empty(group.rows, 3, dtype=dtype).numpy(), torch.empty(group.rows, 1, dtype=dtype).numpy()
            rows.read_into(group.start, X, y, center, scale, ReadBuffers())
            files = parts.read_group(g, COLUMNS, dtype, center, scale).numpy()
            assert np.array_equal(X, files[:, :3]) and np.array_equal(y, files[:, 3:])
    cache = raw.parent
    assert len(standardized(cache)) == 2 and (cache / raw.name).exists()  # one per dtype, beside the row cache
    other = training_rows_path(raw, center, scale * 2, torch.float32)  # another standardization: another name
    assert other != training_rows_path(raw, center, scale, torch.float32)


def test_a_partial_copy_is_never_read_and_a_changed_file_takes_the_copy_with_the_row_cache(tmp_path, cache):
    # catches: reading whatever file has the name; stale copies of data that changed left on disk for good
    write_parts(tmp_path / "data")
    parts, raw, center, scale, rows = prepared(tmp_path)
    os.truncate(rows.path, rows.path.stat().st_size - 4)
    assert TrainingRows.open(rows.path, parts.num_rows, 3, torch.float32) is None
    assert isinstance(training_rows(raw, parts.num_rows, 4, center, scale, torch.float32), RowCache)  # the row cache
    write_parts(tmp_path / "data", seed=1)  # the same sizes, other values
    with pytest.warns(UserWarning, match="changed since its cached pass"):
        _, new_raw, *_ = prepared(tmp_path, write=False)
    assert sorted(p.name for p in cache.glob("rows-*")) == [new_raw.name]  # the old row cache and its copy gone


def test_no_room_for_the_copy_is_one_line_and_training_reads_the_row_cache_to_the_same_end(tmp_path, cache, capsys,
                                                                                              monkeypatch):  # fmt: skip
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming",
            "--batch-size", "10", "--max-epochs", "2"]  # fmt: skip
    copy = train.run([*args, "--logdir", str(tmp_path / "a")])
    said = [line for line in capsys.readouterr().out.splitlines() if "row cache" in line]
    assert len(said) == 2 and "standardizing the row cache once for float32" in said[1] and str(cache) in said[1]
    for name in standardized(cache):
        (cache / name).unlink()
    monkeypatch.setattr(linreg.training_rows, "room_for", lambda folder, size: False)
    train.main([*args, "--logdir", str(tmp_path / "b")])  # as the command runs: its warnings one line each
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if "row cache" in line]
    assert len(lines) == 1 and "no room for a float32 copy of the row cache" in lines[0], stderr
    assert standardized(cache) == [] and "Traceback" not in stderr
    raw = json.loads(max((tmp_path / "b").glob("*/summary.json")).read_text())
    a = json.loads((copy / "summary.json").read_text())
    assert (a["w"], a["b"], a["val_loss"]) == (raw["w"], raw["b"], raw["val_loss"])


def test_a_disk_that_fills_while_the_copy_is_written_costs_the_copy_not_the_run(tmp_path, cache, monkeypatch):
    # catches: a full disk ending the run in a traceback, a partial copy left behind under any name
    write_parts(tmp_path / "data")
    prepared(tmp_path, write=False)  # the row cache alone
    monkeypatch.setattr(linreg.training_rows, "ROWS_AT_A_TIME", 500)
    writes = []

    def filling(fd, data, offset):  # the disk fills at the third write
        writes.append(offset)
        if len(writes) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data) if os.lseek(fd, offset, os.SEEK_SET) == offset else 0

    monkeypatch.setattr(os, "pwrite", filling)
    with pytest.warns(UserWarning, match=r"could not be written \(No space left on device\); every epoch standardizes"):
        *_, rows = prepared(tmp_path)
    assert isinstance(rows, RowCache) and standardized(cache) == []
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_the_held_out_rows_standardized_copy_is_the_same_bits_as_their_parquet_copy(tmp_path, cache, capsys):
    # catches: held-out rows in another order than their copy's, y at a wrong offset, a copy written with
    # --no-row-cache, a copy made for float32 read by a float64 run
    from linreg.streamed_file_data import StreamedFileRegressionDataModule

    write_parts(tmp_path / "data", sizes=(1000, 700, 313), row_group_size=300)
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming",
            "--batch-size", "10", "--max-epochs", "1", "--val-fraction", "0.3"]  # fmt: skip
    train.run([*args, "--no-row-cache", "--logdir", str(tmp_path / "a")])
    assert not list(cache.glob("heldout-*.float*"))  # --no-row-cache: none
    for precision, dtype in (("32-true", torch.float32), ("64-true", torch.float64)):
        train.run([*args, "--precision", precision, "--logdir", str(tmp_path / precision)])
        dm = StreamedFileRegressionDataModule(str(tmp_path / "data"), "y", ["a", "b", "c"], val_fraction=0.3)
        dm.data_dtype = lambda dtype=dtype: dtype
        copy = dm.heldout_copy()
        rows = dm.heldout_rows(copy)
        assert isinstance(rows, TrainingRows) and copy.num_rows == dm.num_val > 0
        center, scale = columns_standardization(dm.mean, dm.std)
        for g, group in enumerate(copy.groups):
            X, y = torch.empty(group.rows, 3, dtype=dtype).numpy(), torch.empty(group.rows, 1, dtype=dtype).numpy()
            rows.read_into(group.start, X, y, center, scale, ReadBuffers())
            files = copy.read_group(g, COLUMNS, dtype, center, scale).numpy()
            assert np.array_equal(X, files[:, :3]) and np.array_equal(y, files[:, 3:])
        stream = RowGroupStream(copy, COLUMNS, dm.mean, dm.std, "cpu", dtype, 4, rows)
        pooled = stream[torch.arange(7, copy.num_rows)]  # through the pool: each group read whole, gathered
        ranged = stream[slice(7, copy.num_rows)]  # as the evaluation asks: read straight from the file
        assert all(torch.equal(a, b) for a, b in zip(pooled, ranged, strict=True)) and len(ranged[0]) > 7
    said = capsys.readouterr().out
    assert said.count("standardizing the held-out rows once for float32") == 1 and "for float64" in said
