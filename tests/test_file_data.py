"""Your own CSV: split, standardization, coefficients in the data's units, and predict.py end to end."""

import csv
import io
import json

import pytest
import torch

from linreg.file_data import FileRegressionDataModule
from tests.conftest import command

train, predict = command("train"), command("predict")


@pytest.fixture
def houses(tmp_path):
    """Noiseless prices: SGD and the closed form must find price = 3000·area - 1500·age + 50000."""
    g = torch.Generator().manual_seed(0)
    area, age = 50 + 200 * torch.rand(300, generator=g), torch.randint(0, 60, (300,), generator=g)
    lines = ["area,age,price"] + [
        f"{a:.1f},{b},{3000 * round(a, 1) - 1500 * b + 50000}" for a, b in zip(area.tolist(), age.tolist(), strict=True)
    ]
    path = tmp_path / "houses.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_and_standardization_use_the_training_rows_only(houses):
    dm = FileRegressionDataModule(str(houses), "price", num_val=50, seed=1)
    dm.setup("fit")
    X = dm.train_set.tensors[0]
    assert X.shape == (250, 2) and dm.val_set.tensors[0].shape == (50, 2) and dm.feature_names == ["area", "age"]
    torch.testing.assert_close(X.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(X.double().std(0), torch.ones(2, dtype=torch.float64), atol=1e-5, rtol=0)
    assert not torch.allclose(dm.val_set.tensors[0].double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-3)
    other = FileRegressionDataModule(str(houses), "price", num_val=50, seed=2)
    assert not torch.equal(dm.val_rows, other.val_rows)  # the split is drawn with the seed


def test_the_training_copy_is_standardized_in_blocks_bit_for_bit_as_whole(houses, monkeypatch):
    # the blocks only bound the float64 temporaries: a block that dropped or repeated rows at its edges, or
    # rounded to float32 before dividing, would differ from the whole table's (X - mean) / std
    dm = FileRegressionDataModule(str(houses), "price", num_val=50, seed=1)
    whole = ((dm.table[:, :-1] - dm.mean) / dm.std).float()
    monkeypatch.setattr("linreg.file_data.STANDARDIZE_ROWS", 7)  # 300 rows: 42 blocks and a short one
    X, y, X_val, y_val = dm.make_data(torch.float32)
    assert torch.equal(torch.cat([X, X_val]), whole) and torch.equal(torch.cat([y, y_val]), dm.table[:, -1:].float())


def test_coefficients_come_back_in_the_datas_units(houses, tmp_path):
    run_dir = train.run(
        [
            "--logdir",
            str(tmp_path),
            "--data",
            str(houses),
            "--target",
            "price",
            "--max-epochs",
            "60",
            "--precision",
            "64-true",
        ]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["feature_names"] == ["area", "age"] and summary["true_w"] is None
    closed = summary["closed_form"]
    assert closed["w"] == pytest.approx([3000, -1500], rel=1e-9) and closed["b"] == pytest.approx(50000, rel=1e-9)
    assert summary["w"] == pytest.approx([3000, -1500], rel=1e-3) and summary["b"] == pytest.approx(50000, rel=1e-3)


def test_predict_writes_the_rows_with_a_prediction_column(houses, tmp_path, capsys):
    run_dir = train.run(["--logdir", str(tmp_path), "--data", str(houses), "--target", "price", "--max-epochs", "60"])
    new = tmp_path / "new.csv"
    new.write_text("area,age\n100,10\n200.5,0\n")
    capsys.readouterr()
    predict.main(["--checkpoint", str(run_dir / "checkpoints" / "last.ckpt"), "--data", str(new)])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["area", "age", "prediction"] and [r[:2] for r in rows[1:]] == [["100", "10"], ["200.5", "0"]]
    assert [float(r[2]) for r in rows[1:]] == pytest.approx([335000, 651500], rel=2e-3)
    out = tmp_path / "predictions.csv"
    predict.main(["--checkpoint", str(run_dir / "checkpoints" / "last.ckpt"), "--data", str(new), "--output", str(out)])
    assert out.read_text().splitlines()[0] == "area,age,prediction"
    with pytest.raises(SystemExit):  # an existing output is never overwritten
        predict.main(
            ["--checkpoint", str(run_dir / "checkpoints" / "last.ckpt"), "--data", str(new), "--output", str(out)]
        )
    assert "exists" in capsys.readouterr().err


def test_a_byte_order_mark_is_not_part_of_the_first_columns_name(houses, tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_text(houses.read_text(), encoding="utf-8-sig")  # what Excel's "CSV UTF-8" writes
    assert excel.read_bytes()[:3] == b"\xef\xbb\xbf"
    dm = FileRegressionDataModule(str(excel), "price", features=["area", "age"])
    assert dm.feature_names == ["area", "age"]
    assert torch.equal(dm.table, FileRegressionDataModule(str(houses), "price").table)


def predictions(capsys, checkpoint, data) -> list[str]:
    capsys.readouterr()
    predict.main(["--checkpoint", str(checkpoint), "--data", str(data)])
    return [row[-1] for row in list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]]


def test_a_float64_model_predicts_in_float64_with_every_digit(houses, tmp_path, capsys):
    args = ["--logdir", str(tmp_path), "--data", str(houses), "--target", "price", "--precision", "64-true"]
    run_dir = train.run([*args, "--max-epochs", "5"])
    summary = json.loads((run_dir / "summary.json").read_text())
    new = tmp_path / "new.csv"
    new.write_text("area,age\n100.3,10\n231.7,3\n")
    printed = predictions(capsys, run_dir / "checkpoints" / "last.ckpt", new)
    # by hand in float64 from the learned coefficients in data units: float32 would be off by ~1e-8 relative,
    # and 6 significant digits by up to 5e-6
    expected = [summary["w"][0] * a + summary["w"][1] * g + summary["b"] for a, g in ((100.3, 10), (231.7, 3))]
    assert [float(p) for p in printed] == pytest.approx(expected, rel=1e-12, abs=0)


def test_a_synthetic_model_predicts_on_raw_columns_and_an_unknown_one_is_refused(tmp_path, capsys):
    run_dir = train.run(["--logdir", str(tmp_path), "--max-epochs", "1"])
    summary = json.loads((run_dir / "summary.json").read_text())
    new = tmp_path / "new.csv"
    new.write_text("x0,x1\n1,0\n0,1\n")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    printed = [float(p) for p in predictions(capsys, checkpoint, new)]
    assert printed == pytest.approx([summary["w"][0] + summary["b"], summary["w"][1] + summary["b"]], rel=1e-6)
    # the same weights with nothing saying what data they were trained on: no guessing the scaling
    saved = torch.load(checkpoint, weights_only=True)
    unknown = tmp_path / "unknown.ckpt"
    torch.save({"state_dict": saved["state_dict"], "hyper_parameters": saved["hyper_parameters"]}, unknown)
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--checkpoint", str(unknown), "--data", str(new)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("predict.py: error:") and "no standardization" in line
