"""The book's closed form for linear regression, β = (XᵀX)⁻¹Xᵀy, solved to the digits float64 allows.

    solution = closed_form(X, y)      # X: (n, num_inputs), y: (n, 1), in memory
    solution = solve(chunks, ...)     # chunks(): a fresh iterator of (X, y) chunks, for each pass over the data
    solution.w, solution.b, solution.loss, solution.digits, solution.method
    excess_loss(solution, w, b)       # how far SGD's (w, b) is above the optimum, in loss
    training_loss(solution, X, y)     # the solution's loss on any rows, summed residual by residual

Two passes at most, each reading the rows once, a chunk at a time (docs/closed-form.md):
1. `linreg.normal_equations`, always: the normal equations in float64 over residuals, Cholesky, and an
   estimate of the digits that leaves (forming XᵀX squares the condition number). Well-conditioned data
   (N(0, 1) or standardized features far from collinear) stops here, at ~1 matrix product per chunk.
2. `linreg.exact_gram` + `linreg.refinement`, when the estimate is below ACCURATE_DIGITS: the Gram matrix
   of the data exactly and R by TSQR in one more pass, then iterative refinement on those k×k numbers
   alone: the exact least-squares solution of the data as given, rounded once to float64. Columns that
   are collinear to float64's resolution get the minimum-norm solution instead, and are named.

The model trains on standardized features Z = (X − center)/scale (a file's; center 0 and scale 1 for
synthetic data): `w`, `b` are in those coordinates, `data_w`, `data_b` in the data's own.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

import torch

from linreg.collinearity import SINGULAR, null_space
from linreg.exact_gram import ExactGram
from linreg.functions import linreg, squared_loss
from linreg.normal_equations import CHUNK_SIZE, FLOAT64_DIGITS, NormalEquations, first_estimate
from linreg.refinement import CONVERGED, exact_loss, preconditioner, refine, to_data

ACCURATE_DIGITS = 12  # below this estimate, the exact pass runs
FEW_DIGITS = 6  # below this, comparisons with the closed form are marked unreliable
EXACT_IS_CHEAP = 1e8  # rows × (k+1)² up to which the exact pass takes < ~50 ms (docs/performance.md)


@dataclass
class ClosedForm:
    w: torch.Tensor  # (num_inputs, 1), float64, the model's (standardized) coordinates
    b: torch.Tensor  # (1,), float64
    root: torch.Tensor  # (k, k) R with RᵀR = Z̃ᵀZ̃ / n (+ λ on the weights' diagonal): the curvature
    loss: float  # mean squared_loss of (w, b) on the rows it was solved on (the data's, without any penalty)
    eigenvalues: torch.Tensor  # (k,) of the same curvature, ascending: along its principal axes
    bias: bool = True  # Z̃ = [Z, 1] and k = d + 1; without a bias Z̃ = Z, k = d, and b is 0
    rank: int | None = None  # of Z̃ to float64's resolution; k where no column depends on others
    collinear: tuple[int, ...] = ()  # columns of Z̃ (d: the intercept) that depend, or nearly, on others
    digits: float | None = None  # estimated correct digits of the fewest-digit coefficient; None: not unique
    method: str = "normal equations"  # or "exact, refined" (pass 2), or "minimum norm" (rank deficient)
    data_w: torch.Tensor | None = None  # (num_inputs,) float64, CPU: w in the data's units
    data_b: torch.Tensor | None = None  # (1,)

    @property
    def condition_number(self) -> float:
        """λ_max / λ_min of Z̃ᵀZ̃ / n: how many times slower (S)GD closes in along the flattest direction
        than the steepest allows; inf where the columns are collinear to float64's resolution (see rank)."""
        if self.rank is not None and self.rank < len(self.eigenvalues):
            return math.inf
        low, high = float(self.eigenvalues[0]), float(self.eigenvalues[-1])
        return high / low if low > 0 else math.inf

    @property
    def max_stable_lr(self) -> float:
        """2 / λ_max: gradient descent on the mean squared_loss diverges for any larger lr."""
        return 2 / float(self.eigenvalues[-1])

    @property
    def comparable(self) -> bool:
        """Whether SGD's excess loss over it is sound: False where it has fewer than FEW_DIGITS digits. (A
        minimum-norm solution has no digits to speak of, but its loss, and so the excess, is sound.)"""
        return self.digits is None or self.digits >= FEW_DIGITS


def closed_form(
    X: torch.Tensor,
    y: torch.Tensor,
    chunk_size: int = CHUNK_SIZE,
    weight_decay: float = 0.0,
    bias: bool = True,
    center: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    exact: bool | None = None,
) -> ClosedForm:
    """β minimizing the mean squared_loss of [X, 1] (or X, `bias=False`), plus weight_decay · ‖w‖²/2 on the
    standardized weights when it is not 0 (ridge; b is not penalized). `exact`: None takes the exact pass
    when the estimate asks for it, True always, False never."""

    def chunks():
        return ((X[i : i + chunk_size], y[i : i + chunk_size]) for i in range(0, len(X), chunk_size))

    return solve(chunks, X.shape[1], weight_decay, bias, center, scale, exact, X.device)


def solve(
    chunks: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    num_inputs: int,
    weight_decay: float = 0.0,
    bias: bool = True,
    center: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    exact: bool | None = None,
    device: torch.device | str = "cpu",
) -> ClosedForm:
    """The closed form from chunks of rows, read once per pass: `chunks()` must give the same rows each time."""
    d = num_inputs
    center = torch.zeros(d, dtype=torch.float64) if center is None else center.double().cpu()
    scale = torch.ones(d, dtype=torch.float64) if scale is None else scale.double().cpu()
    normal = None
    for X, y in chunks():
        if normal is None:  # β₀ from the first rows
            beta0 = first_estimate(X, y, center, scale, bias).to(device)
            normal = NormalEquations(beta0, center, scale, bias)
        normal.update(X, y)
    cheap = normal.solve(weight_decay)
    # The exact pass where the conditioning costs digits, judged on the weights as a vector: a weight far
    # smaller than the others has few digits relative to itself, whatever the method, and a second pass
    # for those alone would cost 20 times the first at 1M x 100. Where that pass is cheap, for them too.
    digits = cheap.digits if normal.rows * (len(cheap.beta) + 1) ** 2 <= EXACT_IS_CHEAP else cheap.normwise_digits
    if exact is False or (exact is None and digits >= ACCURATE_DIGITS):
        rank, collinear = null_space(cheap.eigenvalues, cheap.Q)
        root = cheap.eigenvalues.sqrt()[:, None] * cheap.Q.T
        beta = cheap.beta.reshape(-1)
        return finish(beta, root, cheap.loss, cheap.eigenvalues, rank, collinear, cheap.digits, "normal equations",
                      center, scale, bias)  # fmt: skip
    # the exact pass: each column cut into slices below the power of two above its largest |value|
    bounds = normal.bounds()
    exponents = [math.frexp(m)[1] for m in bounds[:d]] + ([1] if bias else []) + [math.frexp(bounds[d])[1]]
    gram = ExactGram(exponents, center, scale, bias, device)
    for X, y in chunks():
        gram.update(X, y)
    return exactly(gram, weight_decay)


def exactly(gram: ExactGram, weight_decay: float, center=None, scale=None) -> ClosedForm:
    """The solution from the exact pass: refined, or the minimum-norm one where columns are collinear; in
    the model's coordinates (X − center) / scale, the gram's own by default."""
    center = gram.center.cpu() if center is None else center.double().cpu()
    scale = gram.scale.cpu() if scale is None else scale.double().cpu()
    R, z = preconditioner(gram, weight_decay, center, scale)  # (k, k), (k,)
    n, k = gram.rows, len(R)
    U, S, Vh = torch.linalg.svd(R)  # S descending
    eigenvalues, Q = (S.square() / n).flip(0), Vh.T.flip(1)  # ascending, as eigh's
    rank, collinear = null_space(eigenvalues, Q)
    root = R / math.sqrt(n)
    if rank < k:  # not unique: the minimum-norm solution in the model's coordinates, Z̃β ≈ y
        kept = SINGULAR**0.5 * S[0] < S
        beta = Vh.T[:, kept] @ ((U.T[kept] @ z) / S[kept])
        c = to_data(beta, center, scale, gram.bias)
        G, shift = gram.exact()
        loss = exact_loss(G, shift, c, n)
        return finish(beta, root, loss, eigenvalues, rank, collinear, None, "minimum norm", center, scale, gram.bias)
    refined = refine(gram, R, weight_decay, center, scale)
    digits = FLOAT64_DIGITS if refined.correction < CONVERGED else min(-math.log10(refined.correction), FLOAT64_DIGITS)
    d = len(gram.scale)
    return ClosedForm(
        w=refined.beta[:d].reshape(-1, 1),
        b=refined.beta[d:] if gram.bias else torch.zeros(1, dtype=torch.float64),
        root=root,
        loss=refined.loss,
        eigenvalues=eigenvalues,
        bias=gram.bias,
        rank=rank,
        collinear=collinear,
        digits=digits,
        method="exact, refined",
        data_w=refined.c[:d],
        data_b=refined.c[d:] if gram.bias else torch.zeros(1, dtype=torch.float64),
    )


def finish(beta, root, loss, eigenvalues, rank, collinear, digits, method, center, scale, bias) -> ClosedForm:
    """A ClosedForm from the model's β (k,), with the data's coefficients converted exactly, rounded once."""
    d = len(scale)
    beta = beta.reshape(-1)
    data_w = [Fraction(float(w)) / Fraction(float(s)) for w, s in zip(beta[:d].tolist(), scale.tolist(), strict=True)]
    data_b = (
        Fraction(float(beta[d])) - sum(Fraction(float(m)) * w for m, w in zip(center.tolist(), data_w, strict=True))
        if bias
        else Fraction(0)
    )
    zero = torch.zeros(1, dtype=torch.float64, device=beta.device)
    return ClosedForm(
        w=beta[:d].reshape(-1, 1),
        b=beta[d:] if bias else zero,
        root=root,
        loss=loss,
        eigenvalues=eigenvalues,
        bias=bias,
        rank=rank,
        collinear=collinear,
        digits=digits,
        method=method,
        data_w=torch.tensor([float(w) for w in data_w], dtype=torch.float64),
        data_b=torch.tensor([float(data_b)], dtype=torch.float64),
    )


def training_loss(solution: ClosedForm, X: torch.Tensor, y: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> float:
    """The solution's mean squared_loss over X, y (the data's units), residual by residual in float64, a chunk
    at a time (a pass of its own: for other rows than those solved on, or to check `solution.loss`)."""
    total = 0.0
    for start in range(0, len(X), chunk_size):
        Xc, yc = X[start : start + chunk_size].double(), y[start : start + chunk_size].double().reshape(-1, 1)
        w, b = solution.data_w.to(Xc.device).reshape(-1, 1), solution.data_b.to(Xc.device)
        total += float(squared_loss(linreg(Xc, w, b), yc).sum())
    return total / len(X)


# What each costs per training example, in µs (measured: docs/performance.md, "The closed form"): the
# solve, per (d + 2)² of its float64 Gram matrix; an epoch of the CLI's Trainer, per feature of the
# update's arithmetic, and per SGD step (the framework's and the step's fixed cost), which the batch's
# examples share.
SOLVE_US = 1.0e-4
UPDATE_US = 0.0028
STEP_US = 840.0


def solve_us(num_inputs: int, num_examples: int = 1) -> float:
    """What solving costs, in µs: ~(d+2)² per example, in large float64 matrix products."""
    return SOLVE_US * (num_inputs + 2) ** 2 * num_examples


def worth_solving(num_inputs: int, epochs: float, batch_size: float) -> bool:
    """Whether the closed form costs less than the training it is compared with (--closed-form auto).

    Solving costs ~(d+2)² per example, in large float64 matrix products; an epoch ~(d+1) per example in
    small ones plus a fixed cost per step, so small batches make training dear and the closed form cheap
    beside it: at batch 1000 the two break even near d = 100 per epoch, at batch 10 near d = 900.
    """
    solve = solve_us(num_inputs)
    epoch = UPDATE_US * (num_inputs + 1) + STEP_US / batch_size
    return solve <= epochs * epoch


def excess_loss(solution: ClosedForm, w: torch.Tensor, b: torch.Tensor) -> float:
    """Loss of (w, b) minus the optimum's, on the data the solution was solved on.

    For least squares L(θ) - L(β) = ½ (θ - β)ᵀ (X̃ᵀX̃ / n) (θ - β) exactly, so this is ½‖R(θ - β)‖²:
    never negative, and free of the cancellation of subtracting two nearly equal losses once SGD is close
    to the optimum (in float32 the losses agree to all 7 digits well before the parameters do).
    """
    parts = (w, b) if solution.bias else (w,)  # without a bias, b is 0 on both sides
    theta = torch.cat([part.detach().reshape(-1) for part in parts]).to(solution.root)  # (k,)
    beta = torch.cat([solution.w.reshape(-1), solution.b] if solution.bias else [solution.w.reshape(-1)])
    return 0.5 * float((solution.root @ (theta - beta)).square().sum())
