"""The closed form β = (XᵀX)⁻¹Xᵀy and the excess loss, against torch's own least squares and hand algebra."""

import json

import pytest
import torch

from linreg.closed_form import closed_form, excess_loss, training_loss, worth_solving
from linreg.functions import linreg, sgd, squared_loss, synthetic_data


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
    # solving: ~n·(d+2)² multiply-adds in big products; an epoch: ~4·n·(d+1) in small ones, far slower each,
    # plus a fixed cost per step. At batch 1000 d = 100 solves, 150 does not; 1000 features cost ~17 epochs
    # measured, 28 by the rule, which overestimates the solve of wide data (its products run faster there)
    assert worth_solving(2, epochs=3, batch_size=10) and worth_solving(100, epochs=1, batch_size=1000)
    assert not worth_solving(150, epochs=1, batch_size=1000) and worth_solving(150, epochs=2, batch_size=1000)
    assert not worth_solving(1000, epochs=3, batch_size=1000) and worth_solving(1000, epochs=30, batch_size=1000)
    # small batches make the epoch dear: 1000 features are worth solving for 2 epochs at batch 10
    assert not worth_solving(1000, epochs=1, batch_size=10) and worth_solving(1000, epochs=2, batch_size=10)


def test_the_conditioning_is_that_of_the_curvature_and_its_lr_bound_is_where_descent_turns_to_divergence():
    X, y = data(n=200, w=(2.0, -3.4, 0.5), dtype=torch.float64)
    X = X * torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)  # unequal scales: a condition number well above 1
    solution = closed_form(X, y)
    X1 = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], dim=1)  # [X, 1]
    eigenvalues = torch.linalg.eigvalsh(X1.T @ X1 / len(X))  # by hand, ascending
    assert solution.condition_number == pytest.approx(float(eigenvalues[-1] / eigenvalues[0]), rel=1e-9)
    assert solution.max_stable_lr == pytest.approx(2 / float(eigenvalues[-1]), rel=1e-9)
    # full-batch gradient descent with the book's own sgd, just below and just above the bound
    for factor, diverges in ((0.98, False), (1.02, True)):
        w = torch.zeros(3, 1, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        losses = []
        for _ in range(400):
            l = squared_loss(linreg(X, w, b), y)
            losses.append(float(l.detach().mean()))
            l.sum().backward()
            sgd([w, b], factor * solution.max_stable_lr, len(X))
        assert (losses[-1] > 100 * losses[0]) == diverges and (losses[-1] < losses[0]) != diverges


# NIST StRD "Longley" (https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml): US employment 1947-62
# from six collinear economic series; XᵀX of the raw columns has a condition number near 10¹⁶ (5·10⁴ once
# standardized). Columns: deflator, gnp, unemployed, armed_forces, population, year, employed (the target).
LONGLEY = """deflator,gnp,unemployed,armed_forces,population,year,employed
83.0,234289,2356,1590,107608,1947,60323
88.5,259426,2325,1456,108632,1948,61122
88.2,258054,3682,1616,109773,1949,60171
89.5,284599,3351,1650,110929,1950,61187
96.2,328975,2099,3099,112075,1951,63221
98.1,346999,1932,3594,113270,1952,63639
99.0,365385,1870,3547,115094,1953,64989
100.0,363112,3578,3350,116219,1954,63761
101.2,397469,2904,3048,117388,1955,66019
104.6,419180,2822,2857,118734,1956,67857
108.4,442769,2936,2798,120445,1957,68169
110.8,444546,4681,2637,121950,1958,66513
112.6,482704,3813,2552,123366,1959,68655
114.2,502601,3931,2514,125368,1960,69564
115.7,518173,4806,2572,127852,1961,69331
116.9,554894,4007,2827,130081,1962,70551
"""
# NIST's certified coefficients, to 15 digits: the intercept, then one per column in order
LONGLEY_CERTIFIED = [-3482258.63459582, 15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
                     -1.03322686717359, -0.511041056535807e-01, 1829.15146461355]  # fmt: skip


def test_the_closed_form_of_a_csv_is_solved_on_its_float64_numbers_to_the_certified_digits(tmp_path):
    import numpy as np

    from linreg.cli import train

    (tmp_path / "longley.csv").write_text(LONGLEY)
    table = np.loadtxt(tmp_path / "longley.csv", delimiter=",", skiprows=1)
    X1 = np.column_stack([np.ones(len(table)), table[:, :-1]])  # [1, X]
    reference = np.linalg.lstsq(X1, table[:, -1], rcond=None)[0]  # QR-based (SVD) least squares, numpy's
    assert np.allclose(reference, LONGLEY_CERTIFIED, rtol=1e-9, atol=0)  # the data and the reference are right
    # the default --precision 32-true trains in float32: the closed form must still use the file's float64s
    args = ["--data", str(tmp_path / "longley.csv"), "--target", "employed", "--num-val", "0", "--batch-size", "16"]
    run_dir = train.run([*args, "--max-epochs", "1", "--logdir", str(tmp_path / "logs")])
    closed = json.loads((run_dir / "summary.json").read_text())["closed_form"]
    solved = np.array([closed["b"], *closed["w"]])
    assert np.allclose(solved, reference, rtol=1e-9, atol=0), np.abs(solved / reference - 1).max()
    # the exact pass (cheap at 16 rows) gives the exact least squares of the float64 data: NIST's certified
    # values to 14.6 digits (numpy's lstsq: 10.9); the normal equations alone estimated 10.8 for one coefficient
    assert closed["method"] == "exact, refined"
    np.testing.assert_allclose(solved, LONGLEY_CERTIFIED, rtol=1e-14, atol=0)


def test_with_weight_decay_the_closed_form_is_ridge_regression_on_the_weights_only():
    X, y = data(n=50, dtype=torch.float64)
    lambd = 0.7
    solution = closed_form(X, y, weight_decay=lambd, chunk_size=16)
    X1 = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], dim=1)  # [X, 1]
    penalty = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64)) * len(X) * lambd  # b is free
    beta = torch.linalg.solve(X1.T @ X1 + penalty, X1.T @ y)  # by hand: (X̃ᵀX̃ + nλ·I_w) β = X̃ᵀy
    torch.testing.assert_close(torch.cat([solution.w, solution.b.reshape(1, 1)]), beta, rtol=0, atol=1e-12)
    assert solution.loss == pytest.approx(training_loss(solution, X, y), rel=1e-12, abs=0)  # the data's loss
    assert abs(solution.w.norm() - closed_form(X, y).w.norm()) > 0.01  # the penalty shrinks w: not plain least squares
