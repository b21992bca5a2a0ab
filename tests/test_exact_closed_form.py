"""The closed form to float64's last digit (issue 26): against least-squares answers computed exactly with
`fractions`, on problems in the style of NIST's StRD (Wampler's polynomials in exact integers, a Filip-like
degree-10 polynomial), with the cheap path kept where it is accurate and its estimate no better than the truth.

What each would catch: normal equations in float64 alone lose 7-15 digits on these (the cheap path's own
LRE is printed beside); an Ozaki split that drops a product, or int64 sums that overflow, lose the exact
Gram matrix, and the answer then differs from the fractions' in the last digits or more; a merge that
adds accumulators wrongly changes the bits."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import linreg.closed_form
from linreg.closed_form import closed_form
from linreg.exact_gram import ExactGram
from linreg.normal_equations import NormalEquations, first_estimate
from linreg.refinement import preconditioner, refine
from tests.conftest import command
from tests.test_inputs import csv_file

train = command("train")
FILIP = [
    -1467.48961422980,
    -2772.17959193342,
    -2316.37108160893,
    -1127.97394098372,
    -354.478233703349,
    -75.1242017393757,
    -10.8753180355343,
    -1.06221498588947,
    -0.0670191154593408,
    -0.00246781078275479,
    -0.0000402962525080404,
]  # fmt: skip  (NIST's certified values, b first: the shape of the problem)


def exact_least_squares(X: np.ndarray, y: np.ndarray, bias: bool = True) -> list[Fraction]:
    """[w, b] minimizing Σ(y − Xw − b)² over the float64 numbers given, exactly: the normal equations in
    rationals, solved by Gaussian elimination."""
    rows = [[Fraction(float(v)) for v in row] + ([Fraction(1)] if bias else []) for row in X]
    labels = [Fraction(float(v)) for v in y]
    k = len(rows[0])
    M = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    v = [sum(r[i] * t for r, t in zip(rows, labels, strict=True)) for i in range(k)]
    for i in range(k):
        for r in range(i + 1, k):
            f = M[r][i] / M[i][i]
            M[r] = [a - f * b for a, b in zip(M[r], M[i], strict=True)]
            v[r] -= f * v[i]
    x = [Fraction(0)] * k
    for i in reversed(range(k)):
        x[i] = (v[i] - sum(M[i][j] * x[j] for j in range(i + 1, k))) / M[i][i]
    return x


def lre(got: list[float], exact: list[Fraction]) -> float:
    """NIST's log relative error: the fewest correct significant digits of any coefficient (15.9: all)."""
    pairs = [(Fraction(g), e) for g, e in zip(got, exact, strict=True)]
    digits = [-math.log10(abs(g - e) / abs(e)) if g != e else 15.9 for g, e in pairs]
    return min(min(digits), 15.9)


def wampler(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """x = 0..20, y = 1 + x + ... + x⁵ plus ±noise·(1, 2, 3) alternating, in exact integers: Wampler 1 to 5."""
    x = np.arange(21.0)
    y = 1 + x + x**2 + x**3 + x**4 + x**5 + noise * np.where(np.arange(21) % 2 == 0, 1.0, -1.0) * (1 + x % 3)
    return np.column_stack([x**p for p in range(1, 6)]), y


def filip_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """82 points x in [-8.8, -3.1] (7 decimals) and a degree-10 polynomial of them plus noise: like Filip."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-8.8, -3.1, 82), 7)
    y = np.round(np.polyval(FILIP[::-1], x) + rng.normal(0, 0.0033, 82), 8)
    return np.column_stack([x**p for p in range(1, 11)]), y


def solved(X: np.ndarray, y: np.ndarray, **options):
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    return closed_form(Xt, yt, center=Xt.mean(0), scale=Xt.std(0), **options)  # standardized, as a file's


@pytest.mark.parametrize("noise", [0.0, 100.0, 2e4, 2e6])
def test_wampler_style_polynomials_come_out_exact_where_the_normal_equations_lose_digits(noise):
    X, y = wampler(noise)
    exact = exact_least_squares(X, y)
    solution, cheap = solved(X, y), solved(X, y, exact=False)
    assert solution.method == "exact, refined" and solution.digits > 15.9
    assert lre([*solution.data_w.tolist(), solution.data_b.item()], exact) == 15.9  # every coefficient rounded right
    assert lre([*cheap.data_w.tolist(), cheap.data_b.item()], exact) < 11  # what the exact pass is for
    assert cheap.digits < 12  # and the estimate saw it coming: it is why the exact pass ran


def test_a_filip_like_polynomial_is_exact_and_its_columns_are_named_nearly_collinear():
    X, y = filip_like()
    solution = solved(X, y)
    assert lre([*solution.data_w.tolist(), solution.data_b.item()], exact_least_squares(X, y)) == 15.9
    assert solution.rank == 11 and solution.collinear == tuple(range(10))  # κ(Z̃) ~ 4·10⁹: named, and solved
    assert 1e18 < solution.condition_number < 1e20  # finite, from R's singular values (not inf)
    assert solved(X, y, exact=False).digits < 1  # forming XᵀX in float64 leaves nothing


def test_no_bias_and_ridge_take_the_exact_pass_too():
    X, y = wampler(100.0)
    solution = closed_form(torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1), bias=False)
    assert solution.method == "exact, refined" and solution.b.item() == 0.0
    assert lre(solution.data_w.tolist(), exact_least_squares(X, y, bias=False)) == 15.9
    # ridge on well-conditioned data: the exact pass and the normal equations agree to their digits
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(500, 4)), rng.normal(size=500)
    quick, exact = (closed_form(torch.from_numpy(X), torch.from_numpy(y)[:, None], weight_decay=0.1, exact=e)
                    for e in (False, True))  # fmt: skip
    assert quick.method == "normal equations" and exact.method == "exact, refined"
    np.testing.assert_allclose(exact.data_w.numpy(), quick.data_w.numpy(), rtol=1e-13)
    assert exact.loss == pytest.approx(quick.loss, rel=1e-12)


def test_chunks_and_ranks_merge_into_the_same_bits():
    X, y = filip_like(seed=1)
    X, y = torch.from_numpy(np.tile(X, (50, 1))), torch.from_numpy(np.tile(y, 50)).reshape(-1, 1)  # 4100 rows
    center, scale = X.mean(0), X.std(0)
    exponents = [math.frexp(float(v))[1] for v in X.abs().amax(0)] + [1, math.frexp(float(y.abs().max()))[1]]
    whole = ExactGram(exponents, center, scale)
    whole.update(X, y)
    ranks = [ExactGram(exponents, center, scale) for _ in range(3)]
    for i, start in enumerate(range(0, len(X), 97)):  # chunks of 97 rows dealt round-robin to three "ranks"
        ranks[i % 3].update(X[start : start + 97], y[start : start + 97])
    ranks[1].merge(ranks[2])
    ranks[1].merge(ranks[0])
    assert np.array_equal(whole.exact()[0], ranks[1].exact()[0])  # the same integers
    one, merged = (refine(g, preconditioner(g)[0]) for g in (whole, ranks[1]))
    assert torch.equal(one.c, merged.c) and one.loss == merged.loss  # R differs in its rounding; the answer not


def test_well_conditioned_data_stays_on_the_normal_equations_and_its_estimate_is_not_boastful():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 20)).astype(np.float32)
    y = X @ rng.normal(size=20) + 4.2 + rng.normal(0, 0.01, 20000)
    solution = closed_form(torch.from_numpy(X), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1))
    exact = closed_form(torch.from_numpy(X), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1), exact=True)
    assert solution.method == "normal equations" and solution.digits >= 12
    truth = [Fraction(v) for v in [*exact.data_w.tolist(), exact.data_b.item()]]
    actual = lre([*solution.data_w.tolist(), solution.data_b.item()], truth)
    assert actual >= solution.digits


def polynomial_csv(tmp_path, X: np.ndarray, y: np.ndarray) -> str:
    rows = "".join(f"x{p}," for p in range(1, X.shape[1] + 1)) + "y\n"
    return csv_file(tmp_path, rows + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.c_[X, y]))


def test_the_cli_reports_the_method_the_digits_and_a_nearly_collinear_line(tmp_path, capsys):
    X, y = filip_like()
    run_dir = train.run(["--data", polynomial_csv(tmp_path, X, y), "--target", "y", "--num-val", "0",
                         "--max-epochs", "1", "--closed-form", "always", "--logdir", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert "nearly collinear: x1, x2, x3, x4, x5, ... (10 columns) (XᵀX/n has condition number 1.32e+19)" in out
    closed = json.loads((run_dir / "summary.json").read_text())["closed_form"]
    assert closed["method"] == "exact, refined" and closed["digits"] > 15.9 and closed["excess_loss_sound"]
    assert lre([*closed["w"], closed["b"]], exact_least_squares(X, y)) == 15.9  # through the CSV and JSON too


def test_too_few_digits_are_said_and_the_comparison_marked_unreliable(tmp_path, capsys, monkeypatch):
    solve = linreg.closed_form.solve  # the normal equations alone, forced: what the estimate is for
    monkeypatch.setattr(linreg.closed_form, "solve", lambda *a, **k: solve(*a[:6], False, *a[7:], **k))
    X, y = filip_like()
    run_dir = train.run(["--data", polynomial_csv(tmp_path, X, y), "--target", "y", "--num-val", "0",
                         "--max-epochs", "1", "--closed-form", "always", "--logdir", str(tmp_path)])  # fmt: skip
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("closed form:")]
    assert "only, estimated: sgd's" in line and "above it is unreliable" in line
    closed = json.loads((run_dir / "summary.json").read_text())["closed_form"]
    assert closed["method"] == "normal equations" and closed["digits"] < 6 and not closed["excess_loss_sound"]


def test_the_normal_equations_merge_too_to_their_rounding():
    rng = np.random.default_rng(4)
    X, y = torch.from_numpy(rng.normal(size=(3000, 5))), torch.from_numpy(rng.normal(size=(3000, 1)))
    center, scale = X.mean(0), X.std(0)
    beta0 = first_estimate(X, y, center, scale)
    whole, first, second = (NormalEquations(beta0, center, scale) for _ in range(3))
    whole.update(X, y)
    first.update(X[:1234], y[:1234])
    second.update(X[1234:], y[1234:])
    first.merge(second)
    a, b = whole.solve(), first.solve()
    torch.testing.assert_close(a.beta, b.beta, rtol=0, atol=1e-15)  # |β| ~ 0.01: its last digits
    assert a.loss == pytest.approx(b.loss, rel=1e-13) and first.rows == 3000
    with pytest.raises(ValueError, match="different first estimates"):  # residuals of another β₀ do not add up
        first.merge(NormalEquations(beta0 + 1, center, scale))
