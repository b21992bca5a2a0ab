"""--seed fixes everything, and --precision 64-true runs in float64 end to end down to the closed form."""

import json

import lightning as L
import pytest
import torch

from linreg.data import SyntheticRegressionDataModule
from linreg.model import LinearRegressionScratch
from tests.conftest import command
from tests.test_train_cli import scalars

train = command("train")


def summary_of(tmp_path, *args: str) -> dict:
    run_dir = train.run(["--logdir", str(tmp_path), *args])
    return json.loads((run_dir / "summary.json").read_text())


def test_same_seed_is_bit_identical_and_another_seed_is_not(tmp_path):
    first = summary_of(tmp_path, "--seed", "7", "--max-epochs", "1")
    second = summary_of(tmp_path, "--seed", "7", "--max-epochs", "1")
    other = summary_of(tmp_path, "--seed", "8", "--max-epochs", "1")
    assert (first["w"], first["b"]) == (second["w"], second["b"])  # exact float equality
    assert first["train_loss"] == second["train_loss"]
    assert first["w"] != other["w"] and first["b"] != other["b"]


def test_precision_64_true_keeps_data_parameters_and_metrics_in_float64(make_trainer):
    seen = {}

    class DtypeProbe(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen["batch"], seen["w"] = batch[0].dtype, module.w.dtype

        def on_train_epoch_end(self, trainer, module):  # after the epoch's evaluation has logged
            seen["metric"] = trainer.callback_metrics["val/mse"].dtype

    dm = SyntheticRegressionDataModule(num_examples=100, num_val=50)
    make_trainer(precision="64-true", max_epochs=1, callbacks=[DtypeProbe()]).fit(LinearRegressionScratch(), dm)
    assert dm.train_set.tensors[0].dtype == torch.float64  # drawn in float64, not cast per batch
    assert seen == {"batch": torch.float64, "w": torch.float64, "metric": torch.float64}


def test_full_batch_gradient_descent_in_float64_reaches_the_closed_form(tmp_path):
    gd = ["--batch-size", "1000", "--num-examples", "1000", "--lr", "0.5", "--max-epochs", "200", "--num-val", "0"]
    summary = summary_of(tmp_path, *gd, "--precision", "64-true")
    closed = summary["closed_form"]
    assert summary["global_step"] == 200
    for w, w_star in zip(summary["w"], closed["w"], strict=True):
        assert abs(w - w_star) <= 1e-9
    assert abs(summary["b"] - closed["b"]) <= 1e-9
    assert summary["train_loss"] == pytest.approx(closed["train_loss"], rel=1e-9)


def test_full_batch_gradient_descent_with_weight_decay_reaches_the_ridge_solution(tmp_path):
    gd = ["--batch-size", "1000", "--num-examples", "1000", "--lr", "0.5", "--max-epochs", "200", "--num-val", "0"]
    for implementation, lr in (("scratch", "0.5"), ("concise", "0.25")):  # concise at half the lr: MSE has no ½
        summary = summary_of(tmp_path, *gd, "--precision", "64-true", "--weight-decay", "0.3", "--lr", lr,
                             "--implementation", implementation)  # fmt: skip
        ridge = summary["closed_form"]
        for w, w_star in zip(summary["w"], ridge["w"], strict=True):
            assert abs(w - w_star) <= 1e-9
        assert abs(summary["b"] - ridge["b"]) <= 1e-9
        assert abs(summary["w"][0] - 2.0) > 0.1  # shrunk: not the least-squares solution near the true w


def test_excess_loss_is_logged_never_negative_and_is_the_gap_to_the_closed_form(tmp_path):
    run_dir = train.run(["--logdir", str(tmp_path), "--precision", "64-true"])
    summary = json.loads((run_dir / "summary.json").read_text())
    logged = scalars(run_dir)
    # the optimum's loss by hand: least squares (QR) on the same float64 data, not the project's solver
    X, y, _, _ = SyntheticRegressionDataModule(seed=0).make_data(torch.float64)
    X1 = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], dim=1)  # [X, 1]
    beta = torch.linalg.lstsq(X1, y).solution
    reference = float(((X1 @ beta - y) ** 2 / 2).mean())
    assert summary["closed_form"]["train_loss"] == pytest.approx(reference, rel=1e-12)
    assert [v for _, v in logged["reference/closed_form_loss"]] == pytest.approx([reference] * 3, rel=1e-6)
    excess = [v for _, v in logged["train/excess_loss"]]
    assert len(excess) == 3 and min(excess) >= 0
    for (_, gap), (_, loss) in zip(logged["train/excess_loss"], logged["train/epoch_loss"], strict=True):
        assert gap == pytest.approx(loss - reference, rel=1e-4)  # TensorBoard stores float32
