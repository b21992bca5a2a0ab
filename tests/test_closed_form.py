"""The closed form β = (XᵀX)⁻¹Xᵀy and the excess loss, against torch's own least squares and hand algebra."""

import pytest
import torch

from linreg.closed_form import closed_form, excess_loss, training_loss, worth_solving
from linreg.functions import synthetic_data


def data(n=500, w=(2.0, -3.4, 0.5), b=4.2, noise=0.1, seed=0, dtype=torch.float32):
    return synthetic_data(w, b, n, noise, torch.Generator().manual_seed(seed), dtype)


def test_matches_least_squares_on_the_augmented_design():
    X, y = data()
    X1 = torch.cat([X.double(), torch.ones(len(X), 1, dtype=torch.float64)], dim=1)  # [X, 1]
    beta = torch.linalg.lstsq(X1, y.double()).solution  # (d+1, 1), via QR
    solution = closed_form(X, y)
    torch.testing.assert_close(solution.w, beta[:3], rtol=0, atol=1e-12)
    torch.testing.assert_close(solution.b, beta[3], rtol=0, atol=1e-12)
    reference = float(((X1 @ beta - y.double()) ** 2).mean() / 2)
    assert solution.loss == pytest.approx(reference, rel=1e-12, abs=0)
    assert training_loss(solution, X, y) == pytest.approx(reference, rel=1e-12)


def test_the_one_pass_loss_keeps_its_digits_where_the_textbook_identity_loses_them():
    # Noise 1e-4: the loss (~5e-9) is ~10⁹ times smaller than yᵀy / 2n. Summing the residuals one by one,
    # the reference keeps float64's digits; the identity Σ(y − X̃β)² = yᵀy − cᵀβ on the raw sums would not.
    X, y = data(n=2000, noise=1e-4, dtype=torch.float64)
    solution = closed_form(X, y)
    reference = training_loss(solution, X, y)
    assert solution.loss == pytest.approx(reference, rel=1e-10, abs=0)
    X1 = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], dim=1)  # [X, 1]
    beta = torch.cat([solution.w, solution.b.reshape(1, 1)])
    textbook = float(y.T @ y - (X1.T @ y).T @ beta) / (2 * len(X))
    assert textbook != pytest.approx(reference, rel=1e-10, abs=0)  # what the shift to residuals is for


def test_chunking_does_not_change_the_answer():
    X, y = data(n=1001)
    whole, chunked = closed_form(X, y), closed_form(X, y, chunk_size=7)
    torch.testing.assert_close(whole.w, chunked.w, rtol=0, atol=1e-12)
    assert whole.loss == pytest.approx(chunked.loss, rel=1e-12, abs=0)


def test_noiseless_data_gives_back_the_true_parameters():
    X, y = data(noise=0.0, dtype=torch.float64)
    solution = closed_form(X, y)
    torch.testing.assert_close(solution.w.reshape(-1), torch.tensor([2.0, -3.4, 0.5], dtype=torch.float64))
    assert solution.b.item() == pytest.approx(4.2, abs=1e-12) and training_loss(solution, X, y) < 1e-25
    assert solution.loss < 1e-25


def test_singular_design_falls_back_to_the_minimum_norm_solution():
    X, y = data(w=(1.0,), noise=0.0, dtype=torch.float64)
    X2 = torch.cat([X, X], dim=1)  # the same feature twice: XᵀX is singular
    solution = closed_form(X2, y)
    torch.testing.assert_close(solution.w.reshape(-1), torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert solution.b.item() == pytest.approx(4.2, abs=1e-9) and training_loss(solution, X2, y) < 1e-18
    assert solution.loss < 1e-18


def test_excess_loss_is_the_loss_difference_and_never_negative():
    X, y = data(dtype=torch.float64)
    solution = closed_form(X, y)
    assert excess_loss(solution, solution.w, solution.b) == pytest.approx(0.0, abs=1e-20)
    g = torch.Generator().manual_seed(1)
    for scale in (1e-6, 1e-3, 1.0):
        w = solution.w + scale * torch.randn(3, 1, generator=g, dtype=torch.float64)
        b = solution.b + scale * torch.randn(1, generator=g, dtype=torch.float64)
        loss = float(((X @ w + b - y) ** 2).mean() / 2)  # the whole-set loss of (w, b), by hand
        excess = excess_loss(solution, w, b)
        assert excess >= 0
        assert excess == pytest.approx(loss - training_loss(solution, X, y), rel=1e-6, abs=1e-15)


def test_auto_solves_where_the_closed_form_costs_less_than_training():
    # solving: ~n·(d+1)² multiply-adds in big products; an epoch: ~4·n·(d+1) in small ones, far slower each
    assert worth_solving(2, epochs=3) and worth_solving(100, epochs=1)
    assert not worth_solving(1000, epochs=1) and not worth_solving(1000, epochs=3)
    assert worth_solving(1000, epochs=5)
