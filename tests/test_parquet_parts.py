"""--data takes a folder or a glob of Parquet parts, as Spark, pandas, DuckDB and Polars write them (issue 27)."""

import contextlib
import json
import os
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from linreg.data_files import read_columns
from linreg.errors import DataError
from linreg.parquet_parts import ParquetParts
from linreg.read_buffers import ReadBuffers
from tests.conftest import command
from tests.test_inputs import assert_one_line_error, in_process

train = command("train")


def write_parts(folder, sizes=(1000, 1500, 500), row_group_size=400, seed=0):
    """Parts of y = X [2, -3.4, 1] + 4.2 + noise with a row-id column; one in a subfolder, and a _SUCCESS."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    X = rng.normal(size=(n, 3))
    y = X @ [2, -3.4, 1] + 4.2 + rng.normal(0, 0.01, n)
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    start = 0
    for i, size in enumerate(sizes):
        rows = slice(start, start + size)
        table = pa.table({"id": np.arange(start, start + size, dtype=np.int64), "a": X[rows, 0], "b": X[rows, 1],
                          "c": X[rows, 2], "y": y[rows]})  # fmt: skip
        where = folder / "sub" if i == 1 else folder
        pq.write_table(table, where / f"part-{i:05d}.parquet", row_group_size=row_group_size)
        start += size
    (folder / "_SUCCESS").touch()
    (folder / ".part-00000.parquet.crc").write_bytes(b"\0\1")
    return X, y


def test_a_folder_is_its_parts_in_path_order_and_a_glob_the_same(tmp_path):
    write_parts(tmp_path / "data")
    parts = ParquetParts.open(tmp_path / "data")
    assert [p.name for p in parts.paths] == ["part-00000.parquet", "part-00002.parquet", "part-00001.parquet"]
    assert parts.num_rows == 3000 and [g.rows for g in parts.groups][:4] == [400, 400, 200, 400]  # unequal groups
    ids = read_columns(tmp_path / "data", ["id"]).reshape(-1).long()
    assert sorted(ids.tolist()) == list(range(3000))  # every row once
    both = read_columns(str(tmp_path / "data" / "**" / "*.parquet"), ["id", "a"])
    assert torch.equal(both[:, 0].long(), ids)


def test_a_part_with_other_columns_is_named_and_an_empty_part_is_skipped_with_a_line(tmp_path):
    write_parts(tmp_path / "data")
    pq.write_table(pa.table({"id": pa.array([], pa.int64()), "a": pa.array([], pa.float64()),
                             "b": pa.array([], pa.float64()), "c": pa.array([], pa.float64()),
                             "y": pa.array([], pa.float64())}), tmp_path / "data" / "part-00009.parquet")  # fmt: skip
    with pytest.warns(UserWarning, match="part-00009.parquet: an empty part"):
        assert ParquetParts.open(tmp_path / "data").num_rows == 3000
    pq.write_table(pa.table({"id": [1], "a": [1.0], "y": [2.0]}), tmp_path / "data" / "part-00010.parquet")
    mismatch = r"part-00010.parquet: its columns differ from .*part-00000.parquet's"
    with pytest.raises(DataError, match=mismatch), pytest.warns(UserWarning, match="an empty part"):
        ParquetParts.open(tmp_path / "data")


def test_the_cli_trains_on_a_folder_and_refuses_a_resume_after_a_part_changed(tmp_path, capsys):
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--max-epochs", "2"]
    run_dir = train.run([*args, "--logdir", str(tmp_path / "logs")])
    summary = json.loads((run_dir / "summary.json").read_text())
    np.testing.assert_allclose(summary["closed_form"]["w"], [2, -3.4, 1], atol=2e-3)
    part = tmp_path / "data" / "sub" / "part-00001.parquet"
    table = pq.read_table(part)
    pq.write_table(table.set_column(4, "y", pa.array(np.asarray(table["y"]) + 1)), part, row_group_size=400)
    os.utime(part, ns=(1, 1))
    out = in_process(capsys, "--resume", str(run_dir / "checkpoints" / "last.ckpt"), "--max-epochs", "3")
    assert_one_line_error(out, "is not the file the checkpoint was trained on")


def test_no_parts_at_all_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").touch()
    assert_one_line_error(in_process(capsys, "--data", str(tmp_path / "empty"), "--target", "y"), "no data files there")


def test_a_group_read_from_a_memory_map_outlives_the_map_also_uncompressed(tmp_path):
    # Arrow may hand back buffers that point into the mapped file (plain, uncompressed pages): the map is
    # closed after each read, so the values must stay valid after it (Arrow keeps the region alive)
    X = np.random.default_rng(1).normal(size=(5000, 3))
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": X[:, 2]}), tmp_path / "p.parquet",
                   compression="none", use_dictionary=False, row_group_size=2000)  # fmt: skip
    parts = ParquetParts.open(tmp_path / "p.parquet")
    tables = [parts.read_table(g) for g in range(len(parts.groups))]  # each map closed already
    assert np.array_equal(np.concatenate([t.column("a").to_numpy() for t in tables]), X[:, 0])
    out = np.empty((2000, 3), dtype=np.float32)  # into a slot of rows, as a stream reads
    parts.read_group(1, ["a", "b", "y"], torch.float32, torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64),
                     torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64), out=out)  # fmt: skip
    expected = np.stack([(X[2000:4000, 0] - 0.5) / 2.0, X[2000:4000, 1], X[2000:4000, 2]], axis=1)
    assert np.array_equal(out, expected.astype(np.float32))  # (x - mean) / std in float64, rounded once


def test_a_bad_cell_in_a_streamed_read_names_part_row_and_column_and_a_finite_one_is_not_called_bad(tmp_path):
    a = np.arange(300.0)
    a[250] = np.nan  # row 251 of the part, in its second row group
    b = np.full(300, 1.0)
    b[10] = 1e308  # finite: (1e308 - (-1e308)) / 0.5 overflows once standardized, but the cell is fine
    pq.write_table(pa.table({"a": a, "b": b, "y": pa.array([1.0] * 299 + [None])}), tmp_path / "p.parquet",
                   row_group_size=200)  # fmt: skip
    parts = ParquetParts.open(tmp_path / "p.parquet")
    center, scale = torch.tensor([0.0, -1e308, 0.0], dtype=torch.float64), torch.tensor([1.0, 0.5, 1.0]).double()
    out = np.empty((200, 3), dtype=np.float32)
    X = parts.read_group(0, ["a", "b"], torch.float32, center[:2], scale[:2], out=out[:, :2])
    assert X.shape == (200, 2) and np.isinf(out[10, 1]) and out[5, 0] == 5.0  # read, not refused
    with pytest.raises(DataError, match=r"p.parquet, row 251, column 'a': nan is not a finite number"):
        parts.read_group(1, ["a", "b"], torch.float32, center[:2], scale[:2])
    with pytest.raises(DataError, match=r"p.parquet, row 300, column 'y': a missing value"):
        parts.read_group(1, ["y"])


def test_a_group_read_into_rows_with_reused_buffers_is_the_same_bits_as_read_by_columns(tmp_path, monkeypatch):
    # a stream reads each group into a slot of rows through a column-major copy it reuses group after group
    # (ReadBuffers), a few columns at a time. Catches: a reused buffer larger than a short last group
    # transposed whole, a block of columns written at the wrong offset, a value rounded twice
    monkeypatch.setattr("linreg.parquet_parts.COLUMN_BYTES", 8 * 400 * 2)  # 2 columns a block: 2 blocks
    monkeypatch.setattr("linreg.read_buffers.HALVES_FROM", 1)  # the transpose in two halves, one on the helper
    write_parts(tmp_path, sizes=(1000, 700), row_group_size=400)  # groups of 400, 400, 200, 400, 300 rows
    parts, buffers = ParquetParts.open(tmp_path), ReadBuffers()
    columns = ["a", "b", "c", "y"]
    center, scale = torch.tensor([0.1, -0.2, 0.3, 0.0]).double(), torch.tensor([1.5, 0.7, 3.0, 1.0]).double()
    for dtype in (torch.float32, torch.float64):
        for g, group in enumerate(parts.groups):
            rows = np.empty((group.rows, 4), dtype=torch.empty(0, dtype=dtype).numpy().dtype)
            parts.read_group(g, columns, dtype, center, scale, out=rows, buffers=buffers)
            table = parts.read_table(g, columns)
            cells = torch.from_numpy(np.stack([c.to_numpy() for c in table.columns], axis=1))  # float64, as stored
            assert np.array_equal(rows, ((cells - center) / scale).to(dtype).numpy())
            assert np.array_equal(rows, parts.read_group(g, columns, dtype, center, scale).numpy())


def test_a_bad_cell_read_while_the_helper_decodes_ahead_is_the_first_one_and_no_read_outlives_the_map(
    tmp_path, monkeypatch
):
    # with buffers, the helper decodes block k + 1 while block k is standardized (linreg.read_buffers).
    # Catches: the later block's error raised first, a decode left running on a file already unmapped, and
    # a helper that stops after an error (the next read of the same buffers would hang or fail)
    monkeypatch.setattr("linreg.parquet_parts.COLUMN_BYTES", 8 * 100 * 2)  # 2 columns a block: 3 blocks
    columns = {name: np.arange(100.0) for name in "abcdef"}
    columns["b"][7], columns["e"][3] = np.inf, np.nan  # bad cells in the first block and the third
    pq.write_table(pa.table(columns), tmp_path / "p.parquet")
    parts, buffers = ParquetParts.open(tmp_path / "p.parquet"), ReadBuffers()
    ahead, unmapped_while_reading = [], []  # the helper's reads; any not done when the file was unmapped
    submit = buffers.helper().submit
    buffers.executor.submit = lambda *args: ahead.append(submit(*args)) or ahead[-1]
    mapped = ParquetParts.mapped

    @contextlib.contextmanager
    def watched(self, g):
        def slowed(columns):  # the helper's reads: still running when block 0 raises
            if threading.current_thread() is not threading.main_thread():
                time.sleep(0.1)
            return read(columns)

        try:
            with mapped(self, g) as read:
                yield slowed
        finally:
            unmapped_while_reading.extend(f for f in ahead if not f.done())

    monkeypatch.setattr(ParquetParts, "mapped", watched)
    out = np.empty((100, 6), dtype=np.float32)
    with pytest.raises(DataError, match=r"p.parquet, row 8, column 'b': inf is not a finite number"):
        parts.read_group(0, list("abcdef"), torch.float32, torch.zeros(6).double(), torch.ones(6).double(),
                         out=out, buffers=buffers)  # fmt: skip
    assert ahead and not unmapped_while_reading  # the helper read ahead, and no read of it outlived the map
    X = parts.read_group(0, ["a", "c", "d"], torch.float32, torch.zeros(3).double(), torch.ones(3).double(),
                         out=out[:, :3], buffers=buffers)  # fmt: skip
    assert np.array_equal(X.numpy(), np.stack([np.arange(100.0)] * 3, axis=1))
    buffers.close()
    assert buffers.executor is None
