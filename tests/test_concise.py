"""The concise implementation (D2L §3.5) against the scratch one: the same start, and the same steps at twice the lr."""

import json

import pytest
import torch

from linreg.concise import LinearRegressionConcise
from linreg.data import SyntheticRegressionDataModule
from linreg.model import LinearRegressionScratch
from tests.conftest import StepRecorder, command

train, predict = command("train"), command("predict")


def test_the_same_seed_gives_the_same_initial_w_and_b():
    torch.manual_seed(0)
    scratch = LinearRegressionScratch(num_inputs=3, init_std=0.5)
    torch.manual_seed(0)
    concise = LinearRegressionConcise(num_inputs=3, init_std=0.5)  # nn.Linear's own init would draw first
    assert isinstance(concise.net[0], torch.nn.Linear) and concise.w.shape == scratch.w.shape == (3, 1)
    assert torch.equal(concise.w, scratch.w) and torch.equal(concise.b, scratch.b)


def test_one_concise_step_is_minus_lr_times_the_gradient_of_the_mean_squared_error(make_trainer):
    torch.manual_seed(0)
    model = LinearRegressionConcise(num_inputs=2, lr=0.03, init_std=1.0)
    recorder = StepRecorder()
    trainer = make_trainer(max_steps=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticRegressionDataModule(batch_size=10, num_val=0))
    (step,) = recorder.steps
    X, y, w, b = step["X"], step["y"], step["w"], step["b"]
    residual = X @ w + b - y  # (10, 1)
    # d/dw of mean((Xw + b - y)²) = 2 Xᵀ(Xw + b - y) / n: twice squared_loss's gradient
    torch.testing.assert_close(step["w_after"], w - 0.03 * 2 * X.T @ residual / len(X), atol=1e-6, rtol=0)
    torch.testing.assert_close(step["b_after"], b - 0.03 * 2 * residual.sum(0) / len(X), atol=1e-6, rtol=0)


def summary_of(tmp_path, name, *args):
    run_dir = train.run(["--logdir", str(tmp_path / name), "--precision", "64-true", "--batch-size", "7", *args])
    return json.loads((run_dir / "summary.json").read_text()), run_dir


def test_concise_at_lr_eta_takes_the_steps_of_scratch_at_two_eta(tmp_path):
    # 1000 examples at batch 7: a short last batch too; float64, so that only rounding tells them apart
    scratch, _ = summary_of(tmp_path, "scratch", "--lr", "0.06")
    concise, run_dir = summary_of(tmp_path, "concise", "--implementation", "concise", "--lr", "0.03")
    assert concise["global_step"] == scratch["global_step"] == 3 * 143
    for a, b in zip([*concise["w"], concise["b"]], [*scratch["w"], scratch["b"]], strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=0)
    assert concise["train_loss"] == pytest.approx(2 * scratch["train_loss"], rel=1e-9)  # MSE: no ½
    at_same_lr, _ = summary_of(tmp_path, "same-lr", "--lr", "0.03")  # without the factor 2 they differ
    assert abs(at_same_lr["w"][0] - concise["w"][0]) > 1e-6
    # steps per execution apply to the concise loop as to the scratch one: K = 1 gives the same run
    k1, _ = summary_of(tmp_path, "k1", "--implementation", "concise", "--lr", "0.03", "--steps-per-execution", "1")
    assert [*k1["w"], k1["b"]] == [*concise["w"], concise["b"]]
    # and its checkpoint predicts: rebuilt as the concise module from the checkpoint's hyperparameters
    new = tmp_path / "new.csv"
    new.write_text("x0,x1\n1,2\n")
    predict.main(["--checkpoint", str(run_dir / "checkpoints" / "last.ckpt"), "--data", str(new)])
