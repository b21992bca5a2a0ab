"""Collinear columns are named (issue 26, in part): the rank of [X, 1] to float64's resolution of XᵀX, and
the columns in its null space; the closed form reported is then one least-squares solution, which fits
the data exactly as numpy's lstsq does."""

import json

import numpy as np
import torch

from linreg.closed_form import closed_form
from tests.conftest import command
from tests.test_inputs import csv_file

train = command("train")


def dependent(rng, n: int = 300, wobble: float = 0.0):
    """Columns a, b and c = a + b (+ wobble · noise), and y from them."""
    a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    c = a + b + wobble * rng.normal(0, 1, n)
    y = 2 * a - b + 0.5 * c + rng.normal(0, 0.01, n)
    return np.column_stack([a, b, c]), y


def test_a_column_that_is_the_sum_of_two_is_named_and_the_fit_is_lstsqs():
    X, y = dependent(np.random.default_rng(1))
    solution = closed_form(torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1))
    assert solution.rank == 3 and solution.collinear == (0, 1, 2)  # of a, b, c and the intercept: not it
    X1 = np.column_stack([X, np.ones(len(X))])
    fitted = X1 @ np.append(solution.w.reshape(-1).numpy(), solution.b.numpy())
    lstsq = X1 @ np.linalg.lstsq(X1, y, rcond=None)[0]
    np.testing.assert_allclose(fitted, lstsq, rtol=0, atol=1e-10)


def test_nearly_dependent_columns_are_named_and_independent_ones_are_not():
    rng = np.random.default_rng(2)
    X, y = dependent(rng, wobble=1e-9)  # c differs from a + b in the 9th digit: beyond XᵀX's resolution
    assert closed_form(torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)).collinear == (0, 1, 2)
    X, y = dependent(rng, wobble=0.1)  # well apart
    solution = closed_form(torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1))
    assert solution.rank == 4 and solution.collinear == ()


def test_a_constant_column_depends_on_the_intercept():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(0, 1, 100), np.full(100, 3.0)])
    y = X[:, 0] + rng.normal(0, 0.01, 100)
    assert closed_form(torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)).collinear == (1, 2)


def test_the_run_names_them_in_one_line_and_in_summary_json(tmp_path, capsys):
    X, y = dependent(np.random.default_rng(1))
    rows = "a,b,c,y\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.column_stack([X, y]))
    run_dir = train.run(["--data", csv_file(tmp_path, rows), "--target", "y", "--num-val", "0", "--max-epochs", "1",
                         "--logdir", str(tmp_path)])  # fmt: skip
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("collinear:")]
    assert line.startswith("collinear: a, b, c are linearly dependent") and "(rank 3 of 4)" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rank"] == 3 and summary["collinear_columns"] == ["a", "b", "c"]
    assert summary["condition_number"] is None  # infinite: strict JSON has null
