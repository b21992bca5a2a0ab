"""Reading data files (linreg/data_files.py): pyarrow's CSV and Parquet readers, and the one-line errors."""

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from linreg import data_files
from linreg.errors import DataError
from tests.conftest import command

train, predict = command("train"), command("predict")

# Decimal texts that are not exact in binary, tiny and huge exponents, padding zeros, signs
TRICKY = ["0.1", "-2.675", "1e-300", "123456789.123456789", "+3", "0.30000000000000004", "-0", "5e+307", "7.000"]


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def test_pyarrow_reads_every_number_bit_for_bit_as_python_does(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b"], list(zip(TRICKY, reversed(TRICKY), strict=True)))
    fast = data_files.read_csv(path, ["a", "b"], ["a", "b"])
    assert fast is not None  # read by pyarrow, not handed to the diagnosis
    assert torch.equal(fast, data_files.diagnose_csv(path, ["a", "b"], ["a", "b"]))
    assert fast[:, 0].tolist() == [float(t) for t in TRICKY]


def test_a_good_file_is_read_once_by_pyarrow(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "t.csv", ["x", "y"], [(i, 2 * i) for i in range(100)])
    monkeypatch.setattr(data_files, "diagnose_csv", lambda *args: pytest.fail("a good file went to the slow reader"))
    assert data_files.read_columns(path, ["y"]).reshape(-1).tolist() == [2.0 * i for i in range(100)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x,y\n1,2\n3,\n", ["line 3", "column 'y'", "blank"]),  # pyarrow would read a null here
        ("x,y\n1,2\n,4\n", ["line 3", "column 'x'", "blank"]),
        ("x,y\n1,2\n3,NaN\n", ["line 3", "column 'y'", "not a finite number"]),
        ("x,y\n1,2\n3,four\n", ["line 3", "column 'y'", "'four' is not a number"]),
        ("x,y\n1,2\n3\n", ["line 3", "1 fields where the header has 2"]),
    ],
)
def test_bad_csv_cells_are_named_by_line_and_column(tmp_path, text, words):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataError) as error:
        data_files.read_columns(tmp_path / "t.csv", ["x", "y"])
    assert all(word in str(error.value) for word in words), str(error.value)


def test_padded_numbers_and_blank_lines_still_read(tmp_path):
    (tmp_path / "t.csv").write_text("x , y\n 1 , 2\n\n3,4\n")  # pyarrow refuses the spaces: Python reads them
    assert data_files.read_columns(tmp_path / "t.csv", ["x", "y"]).tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ({"x": pa.array([1.0, None, 3.0]), "y": [1.0, 2.0, 3.0]}, ["row 2", "column 'x'", "missing value"]),
        ({"x": ["1", "2", "3"], "y": [1.0, 2.0, 3.0]}, ["column 'x'", "string", "not numbers"]),
        ({"x": [1.0, 2.0, float("inf")], "y": [1.0, 2.0, 3.0]}, ["row 3", "column 'x'", "not a finite number"]),
        ({"x": pa.array([], pa.float64()), "y": pa.array([], pa.float64())}, ["no rows"]),
    ],
)
def test_bad_parquet_columns_are_named_by_row_and_column(tmp_path, columns, words):
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    with pytest.raises(DataError) as error:
        data_files.read_columns(tmp_path / "t.parquet", ["x", "y"])
    assert all(word in str(error.value) for word in words), str(error.value)


def test_a_truncated_parquet_file_is_one_line(tmp_path):
    pq.write_table(pa.table({"x": [1.0], "y": [2.0]}), tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable Parquet file"):
        data_files.read_header(tmp_path / "t.parquet")


def test_parquet_integers_and_decimals_are_read_as_float64(tmp_path):
    import decimal

    x = pa.array([decimal.Decimal("1.25"), decimal.Decimal("-3.50")], pa.decimal128(5, 2))
    pq.write_table(pa.table({"x": x, "n": pa.array([7, -2], pa.int32())}), tmp_path / "t.parquet")
    assert data_files.read_columns(tmp_path / "t.parquet", ["n", "x"]).tolist() == [[7.0, 1.25], [-2.0, -3.5]]


@pytest.mark.parametrize("kind", ["csv", "csv in blocks", "csv padded", "parquet", "parts"])
def test_rows_read_in_an_order_are_the_rows_read_then_reordered(tmp_path, monkeypatch, kind):
    # what the in-memory split relies on (file_data): each row put in its place as it is read, bit for bit
    # the reordered copy it replaces. A row sent to order[i] rather than i (the inverse permutation) would fail:
    # the order is random, not its own inverse.
    g = torch.Generator().manual_seed(1)
    data = torch.randn(700, 3, generator=g, dtype=torch.float64)
    table = pa.table({name: data[:, j].numpy() for j, name in enumerate("abc")})
    if kind.startswith("csv"):
        text = "a,b,c\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in data)
        path = tmp_path / "t.csv"
        path.write_text(text.replace(",", ", ") if kind == "csv padded" else text)  # padded: Python reads it
        monkeypatch.setattr(data_files, "FREE_EVERY", 4096 if kind == "csv in blocks" else data_files.FREE_EVERY)
    elif kind == "parquet":
        pq.write_table(table, path := tmp_path / "t.parquet", row_group_size=128)
    else:
        (path := tmp_path / "parts").mkdir()
        pq.write_table(table.slice(0, 300), path / "part-0.parquet", row_group_size=100)
        pq.write_table(table.slice(300), path / "part-1.parquet", row_group_size=64)
    order = torch.randperm(700, generator=g)
    asked = []
    X = data_files.read_columns(path, ["c", "a"], order=lambda n: asked.append(n) or order)
    assert asked[-1] == 700 and X.is_contiguous()  # row-major, as file_data's mean and std are taken on
    assert torch.equal(X, data_files.read_columns(path, ["c", "a"])[order])
    assert torch.equal(X, data[:, [2, 0]][order])


def houses(n=200):
    g = torch.Generator().manual_seed(0)
    area, age = (50 + 200 * torch.rand(n, generator=g)).double(), torch.randint(0, 60, (n,), generator=g).double()
    price = 3000 * area - 1500 * age + 50000 + 1000 * torch.randn(n, generator=g, dtype=torch.float64)
    return {"area": area.tolist(), "age": age.tolist(), "price": price.tolist()}


def test_csv_and_parquet_of_the_same_numbers_train_bit_identically(tmp_path):
    columns = houses()
    # repr of a float reads back as the same float: the CSV holds exactly the Parquet file's numbers
    write_csv(tmp_path / "h.csv", list(columns), [tuple(map(repr, row)) for row in zip(*columns.values(), strict=True)])
    pq.write_table(pa.table(columns), tmp_path / "h.parquet")
    summaries = []
    for name in ("h.csv", "h.parquet"):
        args = ["--logdir", str(tmp_path / f"logs-{name}"), "--data", str(tmp_path / name), "--target", "price"]
        run_dir = train.run([*args, "--max-epochs", "2"])
        summaries.append(json.loads((run_dir / "summary.json").read_text()))
    for key in ("w", "b", "train_loss", "val_loss", "closed_form", "excess_loss"):
        assert summaries[0].get(key) == summaries[1].get(key), key


def test_predict_reads_parquet_and_writes_parquet_or_csv(tmp_path, capsys):
    columns = houses()
    pq.write_table(pa.table(columns), tmp_path / "h.parquet")
    run_dir = train.run(["--logdir", str(tmp_path), "--data", str(tmp_path / "h.parquet"), "--target", "price"])
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    new = {"area": [100.0, 200.5], "age": [10, 0]}
    pq.write_table(pa.table(new), tmp_path / "new.parquet")
    write_csv(tmp_path / "new.csv", ["area", "age"], [(100, 10), (200.5, 0)])
    capsys.readouterr()
    predict.main(["--checkpoint", checkpoint, "--data", str(tmp_path / "new.csv")])
    from_csv = [float(row[2]) for row in list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]]
    predict.main(
        ["--checkpoint", checkpoint, "--data", str(tmp_path / "new.parquet"), "--output", str(tmp_path / "p.parquet")]
    )
    out = pq.read_table(tmp_path / "p.parquet")
    assert out.column_names == ["area", "age", "prediction"] and out.column("age").to_pylist() == [10, 0]
    # the same model, the same numbers: the same float32 predictions, which the CSV prints in shortest form
    assert out.column("prediction").type == pa.float32()
    assert torch.equal(torch.tensor(out.column("prediction").to_pylist()).float(), torch.tensor(from_csv).float())
    predict.main(["--checkpoint", checkpoint, "--data", str(tmp_path / "new.parquet")])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["area", "age", "prediction"]
    assert torch.equal(torch.tensor([float(row[2]) for row in rows[1:]]).float(), torch.tensor(from_csv).float())
