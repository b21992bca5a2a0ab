"""The row cache (linreg.row_cache): the pass's row-major copy of streamed Parquet parts, read every epoch
instead of the files. The same bits as the files' read; written whole or not at all; replaced when a file
changes; skipped, in one line, where the disk has no room."""

import errno
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import linreg.row_cache
from linreg.file_summary import summarize
from linreg.parquet_parts import ParquetParts
from linreg.read_buffers import ReadBuffers
from linreg.row_cache import RowCache
from tests.conftest import command
from tests.test_parquet_parts import write_parts

train = command("train")
COLUMNS = ["a", "b", "c", "y"]


pytestmark = pytest.mark.usefixtures("cache")  # tests/conftest.py: a cache folder of each test's own


def row_caches(folder) -> list:
    return sorted(p.name for p in folder.glob("rows-*.f64")) if folder.exists() else []


def test_a_group_read_from_the_row_cache_is_the_same_bits_as_from_the_files(tmp_path):
    # catches: the standardization done in float32 or rounded twice, a wrong row offset (a group's rows
    # from another group), the target standardized like a feature, X and y taken from the wrong columns
    write_parts(tmp_path / "data", sizes=(1000, 700, 313), row_group_size=300)  # unequal groups and files
    parts = ParquetParts.open(tmp_path / "data")
    summary = summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True)
    cache = RowCache.open(summary.rows, parts.num_rows, len(COLUMNS))
    assert cache is not None and summary.rows.stat().st_size == parts.num_rows * 4 * 8
    center = torch.cat([summary.mean, torch.zeros(1, dtype=torch.float64)])
    scale = torch.cat([summary.std, torch.ones(1, dtype=torch.float64)])
    linreg.row_cache.CHUNK_BYTES = 8 * 4 * 128  # chunks of 128 rows: several per group, a short last one
    try:
        for dtype in (np.float32, np.float64):
            for g, group in enumerate(parts.groups):
                X, y = np.empty((group.rows, 3), dtype), np.empty((group.rows, 1), dtype)
                cache.read_into(group.start, X, y, center, scale, ReadBuffers())
                files = parts.read_group(g, COLUMNS, torch.from_numpy(X).dtype, center, scale).numpy()
                assert np.array_equal(X, files[:, :3]) and np.array_equal(y, files[:, 3:])
    finally:
        linreg.row_cache.CHUNK_BYTES = 1 << 21


def test_training_from_the_row_cache_ends_where_training_from_the_files_does(tmp_path, cache, capsys):
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming",
            "--batch-size", "10", "--max-epochs", "2"]  # fmt: skip
    files = train.run([*args, "--no-row-cache", "--logdir", str(tmp_path / "a")])
    assert row_caches(cache) == [] and "row cache" not in capsys.readouterr().out  # --no-row-cache: none
    rows = train.run([*args, "--logdir", str(tmp_path / "b")])  # the pass is cached: the rows read for the cache
    said = [line for line in capsys.readouterr().out.splitlines() if "row cache" in line]
    assert len(row_caches(cache)) == 1 and len(said) == 2 and all(str(cache) in line for line in said)  # where
    assert said[0].startswith("writing the row cache once") and said[1].startswith("standardizing the row cache")
    train.run([*args, "--logdir", str(tmp_path / "c")])
    assert "row cache" not in capsys.readouterr().out  # reused, not written again
    a, b = (json.loads((run / "summary.json").read_text()) for run in (files, rows))
    assert (a["w"], a["b"], a["val_loss"]) == (b["w"], b["b"], b["val_loss"])


def test_the_row_cache_is_replaced_when_a_file_changes_and_written_again_when_removed(tmp_path, cache):
    write_parts(tmp_path / "data")
    parts = ParquetParts.open(tmp_path / "data")
    first = summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True).rows
    written = first.stat().st_mtime_ns
    assert summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True).rows == first
    assert first.stat().st_mtime_ns == written  # cached: not written again
    write_parts(tmp_path / "data", seed=1)  # the same sizes, other values
    with pytest.warns(UserWarning, match="changed since its cached pass"):
        second = summarize(ParquetParts.open(tmp_path / "data"), COLUMNS, key=1, threshold=0, row_cache=True).rows
    assert second != first and row_caches(cache) == [second.name]  # the stale copy removed, not kept on disk
    parts = ParquetParts.open(tmp_path / "data")
    cells = np.fromfile(second).reshape(-1, 4)
    assert np.array_equal(
        cells[:, 3], np.concatenate([parts.read_group(g, ["y"])[:, 0] for g in range(len(parts.groups))])
    )
    second.unlink()
    summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True)  # the pass cached, its row cache gone
    assert np.array_equal(np.fromfile(second).reshape(-1, 4), cells)
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # every copy renamed into place whole


def test_a_row_cache_left_partial_is_never_read(tmp_path, cache):
    # a run killed while writing leaves its temporary name; one cut short under the cache's own name (a
    # disk that filled) is not the size of the rows. Catches: reading whatever file has the name
    write_parts(tmp_path / "data")
    parts = ParquetParts.open(tmp_path / "data")
    rows = summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True).rows
    os.truncate(rows, rows.stat().st_size - 8)
    assert RowCache.open(rows, parts.num_rows, 4) is None


def test_no_room_for_the_row_cache_is_one_line_and_the_stream_reads_the_files(tmp_path, cache, capsys, monkeypatch):
    write_parts(tmp_path / "data")
    monkeypatch.setattr(linreg.row_cache, "MARGIN", 1 << 62)  # no disk has this much to spare
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming",
            "--batch-size", "10", "--max-epochs", "1", "--logdir", str(tmp_path / "runs")]  # fmt: skip
    train.main(args)  # as the command runs: its warnings shown as one line each
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if "row cache" in line]
    assert len(lines) == 1 and "no room for a row cache" in lines[0] and "Traceback" not in stderr, stderr
    assert row_caches(cache) == []


def test_a_cache_left_by_a_killed_run_is_removed_and_one_in_use_is_read_after_it_is_cleared(tmp_path, cache):
    # catches: temporary copies of killed runs left on disk for good (gigabytes each), a live run's copy
    # removed under it, a stream that fails when the cache folder is cleared while it trains, and a copy
    # sent to a spawned process that reads through a descriptor it does not have
    write_parts(tmp_path / "data")
    parts = ParquetParts.open(tmp_path / "data")
    rows = summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True).rows
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed, running = (rows.with_name(f".{rows.name}.{pid}.tmp") for pid in (int(dead.stdout), os.getppid()))
    killed.write_bytes(b"partial"), running.write_bytes(b"being written")
    rows.unlink()
    summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True)  # the row cache written again
    assert not killed.exists() and running.exists()
    center, scale = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    first_rows = parts.read_group(0, COLUMNS)[:5].numpy()

    def read(row_cache) -> np.ndarray:
        X, y = np.empty((5, 3)), np.empty((5, 1))
        row_cache.read_into(0, X, y, center, scale, ReadBuffers())
        return np.concatenate([X, y], axis=1)

    in_use = RowCache.open(rows, parts.num_rows, 4)
    assert np.array_equal(read(pickle.loads(pickle.dumps(in_use))), first_rows)  # a spawned process's copy
    rows.unlink()  # the cache cleared while a run reads it
    assert np.array_equal(read(in_use), first_rows)


def test_a_disk_that_fills_while_the_row_cache_is_written_costs_the_cache_not_the_run(tmp_path, cache, monkeypatch):
    # catches: a full disk ending the pass (and the run) in a traceback, a partial copy left behind
    write_parts(tmp_path / "data")

    class FillingFile:  # the disk fills at the second group's write
        def __init__(self, file):
            self.file, self.writes = file, 0

        def write(self, data):
            self.writes += 1
            if self.writes == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def close(self):
            self.file.close()

    monkeypatch.setattr(linreg.row_cache, "open", lambda path, mode: FillingFile(open(path, mode)), raising=False)  # noqa: SIM115
    parts = ParquetParts.open(tmp_path / "data")
    with pytest.warns(UserWarning, match=r"the row cache could not be written \(No space left on device\)"):
        summary = summarize(parts, COLUMNS, key=1, threshold=0, row_cache=True)
    assert summary.mean.shape == (3,) and row_caches(cache) == []  # the pass whole, no cache
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # nor a partial copy


def test_a_copy_removed_while_it_is_written_costs_the_cache_not_the_run(tmp_path, cache, monkeypatch):
    # another machine sharing the cache folder removes it, taking this run's pid for a killed run's there.
    # Catches: FileNotFoundError out of the pass (and the run) where the copy is renamed into place
    write_parts(tmp_path / "data")
    write = linreg.row_cache.RowCacheWriter.write

    def removed_after(self, table):
        write(self, table)
        self.temporary.unlink(missing_ok=True)

    monkeypatch.setattr(linreg.row_cache.RowCacheWriter, "write", removed_after)
    with pytest.warns(UserWarning, match="the row cache could not be written"):
        summary = summarize(ParquetParts.open(tmp_path / "data"), COLUMNS, key=1, threshold=0, row_cache=True)
    assert summary.mean.shape == (3,) and row_caches(cache) == []
