"""--no-bias: y_hat = X w, as scikit-learn's fit_intercept=False. b is exactly 0 in SGD, in the closed form
(least squares without an intercept), in predictions, on resume and on the concise path."""

import json

import numpy as np
import pytest
import torch

from linreg.data import SyntheticRegressionDataModule
from linreg.file_data import FileRegressionDataModule
from linreg.model import LinearRegressionScratch
from tests.conftest import StepRecorder, command
from tests.test_inputs import cli

train = command("train")


@pytest.fixture(scope="module")
def through_origin(tmp_path_factory):
    """y = 3·x1 − 2·x2 + N(0, 0.1²), with features far from 0 (mean 3): an intercept would matter."""
    rng = np.random.default_rng(0)
    X = rng.normal(3, 2, (400, 2))
    y = 3 * X[:, 0] - 2 * X[:, 1] + rng.normal(0, 0.1, 400)
    path = tmp_path_factory.mktemp("data") / "origin.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="x1,x2,y", comments="")
    return path, X, y


def test_one_step_without_a_bias_moves_w_alone(make_trainer):
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=2, lr=0.1, init_std=1.0, bias=False)
    assert [name for name, _ in model.named_parameters()] == ["w"]  # b is no parameter: nothing trains it
    recorder = StepRecorder()
    trainer = make_trainer(max_steps=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticRegressionDataModule(batch_size=10, num_val=0))
    (step,) = recorder.steps
    X, y, w = step["X"], step["y"], step["w"]
    assert torch.equal(step["b"], torch.zeros(1)) and torch.equal(step["b_after"], torch.zeros(1))
    torch.testing.assert_close(step["w_after"], w - 0.1 * X.T @ (X @ w - y) / len(X), atol=1e-6, rtol=0)


def test_a_csv_without_a_bias_is_least_squares_through_the_origin(tmp_path, through_origin):
    path, X, y = through_origin
    run_dir = train.run(["--data", str(path), "--target", "y", "--no-bias", "--num-val", "0", "--max-epochs", "20",
                         "--logdir", str(tmp_path)])  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["b"] == 0.0 and summary["closed_form"]["b"] == 0.0
    lstsq = np.linalg.lstsq(X, y, rcond=None)[0]  # no column of ones
    np.testing.assert_allclose(summary["closed_form"]["w"], lstsq, rtol=1e-10, atol=0)
    assert summary["excess_loss"] < 1e-4  # and SGD got there
    out = cli("predict.py", "--checkpoint", summary["checkpoint"], "--data", str(path))
    predictions = np.array([float(line.rsplit(",", 1)[1]) for line in out.stdout.splitlines()[1:]])
    np.testing.assert_allclose(predictions, X @ np.array(summary["w"]), rtol=1e-5, atol=1e-4)  # no b added


def test_without_a_bias_features_are_scaled_not_centered(through_origin):
    path, X, _ = through_origin
    dm = FileRegressionDataModule(str(path), "y", num_val=0, center=False)
    assert torch.equal(dm.mean, torch.zeros(2, dtype=torch.float64))  # centering would move an intercept in
    np.testing.assert_allclose(dm.std.numpy(), np.sqrt((X**2).mean(0)), rtol=1e-12)
    w, b = dm.to_data_units(torch.tensor([[1.0], [2.0]]), torch.zeros(1))
    assert b.item() == 0.0 and torch.allclose(w, torch.tensor([1.0, 2.0], dtype=torch.float64) / dm.std)


def test_concise_without_a_bias_takes_scratchs_steps_at_twice_the_lr(tmp_path):
    common = ["--no-bias", "--precision", "64-true", "--batch-size", "7", "--num-val", "0"]
    scratch = train.run([*common, "--lr", "0.06", "--logdir", str(tmp_path / "scratch")])
    concise = train.run([*common, "--lr", "0.03", "--implementation", "concise", "--logdir", str(tmp_path / "c")])
    a, b = (json.loads((d / "summary.json").read_text()) for d in (scratch, concise))
    assert a["b"] == b["b"] == 0.0
    np.testing.assert_allclose(a["w"], b["w"], rtol=0, atol=1e-12)


def test_a_run_without_a_bias_resumes_without_one(tmp_path, capsys):
    straight = train.run(["--no-bias", "--logdir", str(tmp_path / "straight")])
    first = train.run(["--no-bias", "--max-steps", "150", "--checkpoint-every-n-steps", "150",
                       "--logdir", str(tmp_path / "first")])  # fmt: skip
    checkpoint = str(first / "checkpoints" / "last-step.ckpt")
    resumed = train.run(["--resume", checkpoint, "--max-steps", "-1", "--logdir", str(tmp_path / "resumed")])
    a, b = (json.loads((d / "summary.json").read_text()) for d in (straight, resumed))
    assert (a["w"], a["b"]) == (b["w"], b["b"]) and b["b"] == 0.0 and b["hparams"]["no_bias"] is True
