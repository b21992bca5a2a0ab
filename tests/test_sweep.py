"""linreg-sweep end to end on a tiny setting, and the flags of the reshuffling exercise."""

import csv
import json

import pytest
import torch
from matplotlib.image import imread

from linreg.data import SyntheticRegressionDataModule
from tests.conftest import command

sweep = command("sweep")
TINY = ["--num-examples", "100", "--num-val", "50", "--max-epochs", "2"]


def test_sweep_writes_the_table_the_csv_and_a_png(tmp_path, capsys):
    folder = sweep.run(["--param", "lr", "--values", "0.03", "0.3", "50", "--logdir", str(tmp_path), *TINY])
    assert folder == tmp_path / "sweep_lr_0"
    assert capsys.readouterr().out.rstrip().endswith(str(folder))  # the sweep folder's path, last
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert [r["value"] for r in rows] == ["0.03", "0.3", "50"]
    assert set(rows[0]) == {"value", "train_loss", "val_loss", "w_error", "b_error", "excess_loss", "fit_seconds"}
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])  # 2 epochs of 10 steps: 0.3 gets further
    assert rows[2]["train_loss"] == "diverged" and float(rows[2]["fit_seconds"]) > 0
    # 20 steps at lr 0.03 leave SGD far above the optimum: the excess loss is the plain difference of the
    # two losses to many digits there, and must not be the held-out loss or a difference the wrong way round
    summary = json.loads((folder / "lr=0.03" / "version_0" / "summary.json").read_text())
    gap = summary["train_loss"] - summary["closed_form"]["train_loss"]
    assert gap > 0.1 and float(rows[0]["excess_loss"]) == pytest.approx(gap, rel=1e-4)
    image = imread(folder / "loss_curves.png")  # a PNG matplotlib can read back
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(p.name for p in folder.iterdir()) == ["loss_curves.png", "lr=0.03", "lr=0.3", "lr=50", "results.csv"]
    assert sweep.run(["--param", "lr", "--values", "0.03", "--logdir", str(tmp_path), *TINY]).name == "sweep_lr_1"


def test_a_streaming_sweep_has_no_training_loss_or_closed_form(tmp_path, capsys):
    stream = ["--streaming", "--num-examples", "1000", "--num-val", "100", "--max-epochs", "1"]
    folder = sweep.run(["--param", "lr", "--values", "0.03", "0.1", "--logdir", str(tmp_path), *stream])
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert [(r["train_loss"], r["excess_loss"]) for r in rows] == [("", ""), ("", "")]
    assert float(rows[1]["val_loss"]) < float(rows[0]["val_loss"]) and float(rows[1]["w_error"]) < 0.01


def test_on_off_flags_and_bad_params(tmp_path, capsys):
    folder = sweep.run(["--param", "no-shuffle", "--values", "no", "yes", "--logdir", str(tmp_path), *TINY])
    assert [r["value"] for r in csv.DictReader((folder / "results.csv").open())] == ["no", "yes"]
    for bad in (["--param", "learning-rate", "--values", "1"], ["--param", "no-shuffle", "--values", "1"]):
        with pytest.raises(SystemExit):
            sweep.run([*bad, "--logdir", str(tmp_path)])
        assert capsys.readouterr().err.startswith("sweep.py: error:")


def test_sort_by_label_and_no_shuffle():
    dm = SyntheticRegressionDataModule(num_examples=50, num_val=0, batch_size=10, sort_by_label=True, shuffle=False)
    dm.setup("fit")
    X, y = dm.train_set.tensors
    assert torch.all(y[1:] >= y[:-1])  # stored sorted by label
    residual = y.reshape(-1) - (X @ torch.tensor([2.0, -3.4]) + 4.2)  # each row still with its own label
    assert residual.abs().max().item() < 5 * 0.01
    batches = list(dm.train_dataloader())
    assert torch.equal(torch.cat([b[1] for b in batches]), y)  # and read in that order, every epoch


def test_a_loss_sweep_on_outliers_draws_the_error_in_w_against_steps(tmp_path, monkeypatch):
    import linreg.figures

    drawn = {}

    def spy(curves, title, tag="train/epoch_loss"):
        drawn.update(curves=curves, tag=tag)
        return figure(curves, title, tag)

    figure = linreg.figures.loss_curves_figure
    monkeypatch.setattr(linreg.figures, "loss_curves_figure", spy)
    sweep_args = ["--param", "loss", "--values", "squared", "huber", "--curve", "params/w_error"]
    folder = sweep.run([*sweep_args, "--outliers", "0.1", "--lr", "0.3", "--logdir", str(tmp_path), *TINY])
    rows = {r["value"]: r for r in csv.DictReader((folder / "results.csv").open())}
    assert float(rows["huber"]["w_error"]) < float(rows["squared"]["w_error"])  # outliers pull squared loss off
    assert drawn["tag"] == "params/w_error"
    steps = [step for step, _ in drawn["curves"]["loss=huber"]]
    assert steps[0] == 0 and steps[-1] == 20 and len(steps) > 2  # every log step of 2 epochs × 10, not per epoch
