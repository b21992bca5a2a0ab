"""LinearRegressionScratch's steps inside a real Trainer, checked against gradients and metrics by hand."""

import pytest
import torch

from linreg.data import SyntheticRegressionDataModule
from linreg.model import LinearRegressionScratch
from tests.conftest import RecordingLogger, StepRecorder


def hand_step(step, lr):
    """The expected update: -lr times the mean gradient of the squared loss over the batch."""
    X, y, w, b = step["X"], step["y"], step["w"], step["b"]
    residual = X @ w + b - y  # (n, 1)
    grad_w = X.T @ residual / len(X)  # Xᵀ(Xw + b - y) / n: (num_inputs, 1)
    grad_b = residual.sum(0) / len(X)  # (1,)
    return w - lr * grad_w, b - lr * grad_b


def test_one_training_step_moves_w_and_b_by_minus_lr_times_the_gradient(make_trainer):
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=2, lr=0.03, init_std=1.0)  # far from the truth: a big step
    recorder = StepRecorder()
    trainer = make_trainer(max_steps=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticRegressionDataModule(batch_size=10, num_val=0))
    (step,) = recorder.steps
    w_expected, b_expected = hand_step(step, lr=0.03)
    assert not torch.allclose(step["w_after"], step["w"])  # it moved...
    torch.testing.assert_close(step["w_after"], w_expected, atol=1e-6, rtol=0)  # ...by exactly -lr·∇
    torch.testing.assert_close(step["b_after"], b_expected, atol=1e-6, rtol=0)
    assert trainer.global_step == 1


def test_a_block_of_k_minibatches_is_k_hand_updates_in_sequence(make_trainer):
    # steps per execution: one Lightning batch carries 4 minibatches. 95 examples at batch 10 are 10
    # minibatches, the last of 5 examples: blocks of 4, 4 and 2 minibatches
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=2, lr=0.1, init_std=1.0)
    recorder = StepRecorder()
    dm = SyntheticRegressionDataModule(num_examples=95, num_val=0, batch_size=10, steps_per_execution=4)
    trainer = make_trainer(max_epochs=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    assert [block["lengths"] for block in recorder.steps] == [[10] * 4, [10] * 4, [10, 5]]
    assert [block["global_step"] for block in recorder.steps] == [4, 8, 10]  # global_step counts updates
    for block in recorder.steps:
        w, b = block["w"], block["b"]
        for X, y in zip(block["X"].split(block["lengths"]), block["y"].split(block["lengths"]), strict=True):
            w, b = hand_step({"X": X, "y": y, "w": w, "b": b}, lr=0.1)  # one after the other
        torch.testing.assert_close(block["w_after"], w, atol=1e-6, rtol=0)
        torch.testing.assert_close(block["b_after"], b, atol=1e-6, rtol=0)


def test_global_step_counts_sgd_updates(make_trainer):
    recorder = StepRecorder()
    trainer = make_trainer(max_epochs=2, limit_train_batches=7, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(LinearRegressionScratch(), datamodule=SyntheticRegressionDataModule(num_val=0))
    assert [s["global_step"] for s in recorder.steps] == list(range(1, 15))
    assert trainer.global_step == 14
    trainer = make_trainer(max_steps=5, limit_val_batches=0)  # max_steps relies on global_step
    trainer.fit(LinearRegressionScratch(), datamodule=SyntheticRegressionDataModule(num_val=0))
    assert trainer.global_step == 5


def test_short_last_batch_takes_the_mean_gradient_not_the_books_nominal_division(make_trainer):
    # 25 examples at batch 10: batches of 10, 10, 5. The book divides the last by 10 (half a step).
    recorder = StepRecorder()
    trainer = make_trainer(max_epochs=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(LinearRegressionScratch(lr=0.1), datamodule=SyntheticRegressionDataModule(num_examples=25, num_val=0))
    last = recorder.steps[-1]
    assert len(last["X"]) == 5
    w_expected, b_expected = hand_step(last, lr=0.1)  # divides by 5
    torch.testing.assert_close(last["w_after"], w_expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(last["b_after"], b_expected, atol=1e-6, rtol=0)
    book_w = last["w"] - 0.1 * last["X"].T @ (last["X"] @ last["w"] + last["b"] - last["y"]) / 10
    assert not torch.allclose(last["w_after"], book_w, atol=1e-6)


def test_epoch_metrics_equal_hand_computed_values(make_trainer):
    torch.manual_seed(1)
    dm = SyntheticRegressionDataModule(num_examples=200, num_val=150, noise=0.3, eval_batch_size=64)
    model = LinearRegressionScratch(lr=0.01)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(model, datamodule=dm)
    w, b = model.w.detach(), model.b.detach()
    X, y = dm.train_set.tensors
    train_loss = ((X @ w + b - y) ** 2 / 2).mean()  # the book's "loss on the whole training set"
    X, y = dm.val_set.tensors
    residual = X @ w + b - y
    mse = (residual**2).mean()
    r2 = 1 - (residual**2).sum() / ((y - y.mean()) ** 2).sum()
    metrics = trainer.callback_metrics
    assert metrics["train/epoch_loss"].item() == pytest.approx(train_loss.item(), rel=1e-5)
    assert metrics["val/loss"].item() == pytest.approx(mse.item() / 2, rel=1e-5)
    assert metrics["val/mse"].item() == pytest.approx(mse.item(), rel=1e-5)
    assert metrics["val/r2"].item() == pytest.approx(r2.item(), rel=1e-5)
    assert metrics["hp_metric"].item() == pytest.approx(mse.item() / 2, rel=1e-5)


def test_init_follows_the_book():
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=10_000, init_std=0.01)
    assert model.w.shape == (10_000, 1) and model.b.shape == (1,)
    assert model.w.std().item() == pytest.approx(0.01, rel=0.05) and model.b.item() == 0.0
    assert model.automatic_optimization is False


def test_train_loss_is_the_mean_minibatch_loss_since_the_last_write(make_trainer):
    recorder, logger = StepRecorder(), RecordingLogger()
    trainer = make_trainer(max_steps=12, log_every_n_steps=4, callbacks=[recorder], logger=logger, limit_val_batches=0)
    trainer.fit(LinearRegressionScratch(), datamodule=SyntheticRegressionDataModule(num_val=0))
    # the loss of each minibatch before its update, by hand: ½ mean (Xw + b - y)²
    losses = [((s["X"] @ s["w"] + s["b"] - s["y"]) ** 2 / 2).mean().item() for s in recorder.steps]
    written = logger.values("train/loss")
    assert [step for step, _ in written] == [3, 7, 11]  # Lightning's x-axis: updates before the last minibatch
    for (_, value), window in zip(written, (losses[0:4], losses[4:8], losses[8:12]), strict=True):
        assert value == pytest.approx(sum(window) / 4, rel=1e-5)


@pytest.mark.parametrize(
    ("loss", "derivative"),
    [
        # d loss / d y_hat per example, by hand: the residual's sign for |r|, r clipped to ±delta for Huber
        ("absolute", lambda residual: residual.sign()),
        ("huber", lambda residual: residual.clamp(-0.5, 0.5)),
    ],
)
def test_one_step_on_another_loss_is_minus_lr_times_its_gradient(make_trainer, loss, derivative):
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=2, lr=0.03, init_std=1.0, loss=loss, huber_delta=0.5)
    recorder = StepRecorder()
    trainer = make_trainer(max_steps=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticRegressionDataModule(batch_size=10, num_val=0))
    (step,) = recorder.steps
    X, y, w, b = step["X"], step["y"], step["w"], step["b"]
    g = derivative(X @ w + b - y)  # (10, 1)
    if loss == "huber":
        assert 0 < (g.abs() < 0.5).sum() < len(g)  # both pieces of the loss are exercised in this batch
    w_expected, b_expected = w - 0.03 * X.T @ g / len(X), b - 0.03 * g.sum(0) / len(X)
    torch.testing.assert_close(step["w_after"], w_expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(step["b_after"], b_expected, atol=1e-6, rtol=0)
    # a squared-loss step from the same point goes elsewhere: the test tells the losses apart
    assert not torch.allclose(step["w_after"], hand_step(step, lr=0.03)[0], atol=1e-4)


def test_one_step_with_weight_decay_adds_lambda_times_w_to_the_gradient_and_leaves_b_alone(make_trainer):
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=2, lr=0.03, init_std=1.0, weight_decay=0.5)
    recorder = StepRecorder()
    trainer = make_trainer(max_steps=1, callbacks=[recorder], limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticRegressionDataModule(batch_size=10, num_val=0))
    (step,) = recorder.steps
    w_plain, b_plain = hand_step(step, lr=0.03)
    # λ/2·‖w‖² on each example's loss: its gradient λw, averaged over the batch, is λw
    torch.testing.assert_close(step["w_after"], w_plain - 0.03 * 0.5 * step["w"], atol=1e-6, rtol=0)
    torch.testing.assert_close(step["b_after"], b_plain, atol=1e-6, rtol=0)
