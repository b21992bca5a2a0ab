"""The book's functions: shapes and values checked against hand arithmetic."""

import pytest
import torch

from linreg.functions import linreg, sgd, squared_loss, synthetic_data


def test_synthetic_data_shapes_and_reproducibility():
    X, y = synthetic_data(torch.tensor([2.0, -3.4]), 4.2, 50, generator=torch.Generator().manual_seed(1))
    assert X.shape == (50, 2) and y.shape == (50, 1)
    X2, y2 = synthetic_data([2.0, -3.4], 4.2, 50, generator=torch.Generator().manual_seed(1))
    assert torch.equal(X, X2) and torch.equal(y, y2)


def test_synthetic_data_without_noise_is_exactly_linear():
    X, y = synthetic_data([1.0, 2.0, 3.0], -1.0, 8, noise=0.0, dtype=torch.float64)
    assert X.dtype == y.dtype == torch.float64
    torch.testing.assert_close(y, X @ torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64) - 1.0)


def test_linreg_is_xw_plus_b():
    X = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]])  # (3, 2)
    w = torch.tensor([[0.5], [-1.0]])  # (2, 1)
    b = torch.tensor([2.0])  # (1,)
    # row by row: 0.5 - 2 + 2, 1.5 - 4 + 2, 0 + 1 + 2
    assert torch.equal(linreg(X, w, b), torch.tensor([[0.5], [-0.5], [3.0]]))


def test_squared_loss_is_per_example_half_square_and_reshapes_y():
    y_hat = torch.tensor([[1.0], [2.0], [5.0]])
    y = torch.tensor([3.0, 2.0, 4.0])  # flat labels are reshaped like y_hat, as in the book
    l = squared_loss(y_hat, y)
    assert l.shape == (3, 1)
    assert torch.equal(l, torch.tensor([[2.0], [0.0], [0.5]]))  # (1-3)²/2, 0, (5-4)²/2


def test_sgd_update_is_the_hand_formula_and_zeroes_grads():
    w = torch.tensor([[1.0], [2.0]], requires_grad=True)
    b = torch.tensor([0.5], requires_grad=True)
    w.grad = torch.tensor([[4.0], [-8.0]])
    b.grad = torch.tensor([2.0])
    sgd([w, b], lr=0.1, batch_size=4)
    # param -= lr * grad / batch_size
    assert torch.allclose(w, torch.tensor([[1.0 - 0.1 * 4 / 4], [2.0 + 0.1 * 8 / 4]]))
    assert torch.allclose(b, torch.tensor([0.5 - 0.1 * 2 / 4]))
    assert torch.count_nonzero(w.grad) == 0 and torch.count_nonzero(b.grad) == 0
    assert w.is_leaf and w.requires_grad  # updated in place under no_grad: still a trainable leaf


def test_one_book_step_matches_the_analytic_gradient():
    # l.sum().backward() gives Xᵀ(Xw + b - y) for w and Σ(Xw + b - y) for b.
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)
    w = torch.randn(3, 1, generator=g).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    residual = (X @ w + b - y).detach()  # (10, 1)
    expected_w = w.detach() - 0.03 * X.T @ residual / 10
    expected_b = b.detach() - 0.03 * residual.sum(0) / 10
    squared_loss(linreg(X, w, b), y).sum().backward()
    sgd([w, b], 0.03, 10)
    torch.testing.assert_close(w.detach(), expected_w)
    torch.testing.assert_close(b.detach(), expected_b)


def test_absolute_and_huber_losses_per_example_by_hand():
    from linreg.functions import absolute_loss, huber_loss

    y_hat = torch.tensor([[-3.0], [-0.5], [0.0], [0.5], [2.0]])
    y = torch.zeros(5)  # a label vector of shape (n,) is reshaped, as for squared_loss
    assert absolute_loss(y_hat, y).tolist() == [[3.0], [0.5], [0.0], [0.5], [2.0]]
    # squared within delta = 1, then delta·(|r| - delta/2): 3 -> 2.5, 2 -> 1.5
    assert huber_loss(y_hat, y).tolist() == [[2.5], [0.125], [0.0], [0.125], [1.5]]
    assert huber_loss(y_hat, y, delta=0.5).tolist() == [[1.375], [0.125], [0.0], [0.125], [0.875]]
    # the pieces meet at |r| = delta with the same value and slope
    r = torch.tensor([[1.0 - 1e-6], [1.0 + 1e-6]], dtype=torch.float64, requires_grad=True)
    huber_loss(r, torch.zeros(2, dtype=torch.float64)).sum().backward()
    assert r.grad.reshape(-1).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
