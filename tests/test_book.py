"""The book's script as the benchmarks run it (linreg.book): its data_iter, and one step of its loop by hand."""

import random

import pytest
import torch

from linreg.book import data_iter, tensor_data_iter, train
from linreg.functions import synthetic_data


@pytest.mark.parametrize("batches", [data_iter, tensor_data_iter])
def test_every_example_once_per_pass_in_a_new_order_with_a_short_last_batch(batches):
    random.seed(0)
    torch.manual_seed(0)
    features, labels = torch.arange(23.0).reshape(-1, 1), torch.arange(23.0).reshape(-1, 1)
    orders = []
    for _ in range(2):
        parts = list(batches(5, features, labels))
        assert [len(X) for X, _ in parts] == [5, 5, 5, 5, 3]
        assert all(torch.equal(X, y) for X, y in parts)  # rows stay paired with their labels
        order = torch.cat([X for X, _ in parts]).reshape(-1)
        assert sorted(order.tolist()) == list(range(23))
        orders.append(order)
    assert not torch.equal(*orders)


def test_one_full_batch_epoch_is_one_gradient_step_by_hand(capsys):
    true_w, true_b, n, lr = torch.tensor([2.0, -3.4]), 4.2, 50, 0.03
    X, y = synthetic_data(true_w, true_b, n, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    w0 = torch.normal(0, 0.01, size=(2, 1)).double()  # the draw train() makes first; b0 = 0
    torch.manual_seed(7)
    w, b = train(X, y, batch_size=n, num_epochs=1, lr=lr)
    # squared_loss summed, divided by batch_size: the mean gradient. w1 = w0 − lr·Xᵀ(Xw0 − y)/n, b1 = −lr·Σ(Xw0 − y)/n
    residual = X.double() @ w0 - y.double()  # (n, 1), at b0 = 0
    w1 = w0 - lr * X.double().T @ residual / n
    b1 = -lr * residual.sum() / n
    torch.testing.assert_close(w.detach().double(), w1, rtol=0, atol=1e-6)
    torch.testing.assert_close(b.detach().double(), b1.reshape(1), rtol=0, atol=1e-6)
    loss = float(((X.double() @ w1 + b1 - y.double()) ** 2 / 2).mean())  # the epoch's line, after the step
    line = capsys.readouterr().out
    assert line.startswith("epoch 1, loss ") and line.count("\n") == 1
    assert float(line.split()[-1]) == pytest.approx(loss, rel=1e-6)  # float32 against float64: 7 digits
