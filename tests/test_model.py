"""LinearRegressionScratch's steps inside a real Trainer, checked against gradients and metrics by hand: the
plain core, and the CLI's stack (linreg/stack.py) where a test is about one of its layers."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from linreg.data import SyntheticRegressionDataModule
from linreg.functions import synthetic_data
from linreg.model import LinearRegressionScratch
from linreg.stack import Scratch, SyntheticData
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
    model = Scratch(num_inputs=2, lr=0.1, init_std=1.0)
    recorder = StepRecorder()
    dm = SyntheticData(num_examples=95, num_val=0, batch_size=10, steps_per_execution=4)
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


def test_the_plain_module_fits_any_xy_loader_in_a_stock_trainer():
    # the design card's snippet: a TensorDataset, a shuffled DataLoader, Lightning's own Trainer. 1005
    # examples at batch 10 are 101 steps an epoch, the last of 5 examples.
    X, y = synthetic_data(torch.tensor([2.0, -3.4]), 4.2, 1005, generator=torch.Generator().manual_seed(0))
    order = torch.Generator().manual_seed(1)  # the DataLoader's shuffling, replayed below
    loader = DataLoader(TensorDataset(X, y), batch_size=10, shuffle=True, generator=order)
    torch.manual_seed(2)
    model = LinearRegressionScratch(num_inputs=2, lr=0.03)
    w = model.w.detach().clone().requires_grad_(True)  # the book's loop from the same start
    b = torch.zeros(1, requires_grad=True)
    replay = DataLoader(TensorDataset(X, y), batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        for X_batch, y_batch in replay:
            l = ((X_batch @ w + b - y_batch) ** 2 / 2).sum()
            l.backward()
            with torch.no_grad():
                for param in (w, b):
                    param -= 0.03 * param.grad / len(X_batch)
                    param.grad.zero_()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, loader)
    assert trainer.global_step == 303
    assert (model.w.detach() - w.detach()).abs().max() <= 1e-6 and (model.b.detach() - b.detach()).abs().max() <= 1e-6
    assert (w.detach().reshape(-1) - torch.tensor([2.0, -3.4])).abs().max() < 1e-2  # and it learned


def test_init_follows_the_book():
    torch.manual_seed(0)
    model = LinearRegressionScratch(num_inputs=10_000, init_std=0.01)
    assert model.w.shape == (10_000, 1) and model.b.shape == (1,)
    assert model.w.std().item() == pytest.approx(0.01, rel=0.05) and model.b.item() == 0.0
    assert model.automatic_optimization is False


def test_train_loss_is_the_mean_minibatch_loss_since_the_last_write(make_trainer):
    # the steps-per-execution layer writes train/loss itself: the mean over the window, not the last value
    recorder, logger = StepRecorder(), RecordingLogger()
    trainer = make_trainer(max_steps=12, log_every_n_steps=4, callbacks=[recorder], logger=logger, limit_val_batches=0)
    trainer.fit(Scratch(), datamodule=SyntheticData(num_val=0))
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
