"""The book's closed form for linear regression, β = (XᵀX)⁻¹Xᵀy, solved soundly in one pass over the rows.

    solution = closed_form(X, y)      # X: (n, num_inputs), y: (n, 1): reads each row once
    solution.w, solution.b, solution.loss
    excess_loss(solution, w, b)       # how far SGD's (w, b) is above the optimum, in loss
    training_loss(solution, X, y)     # the solution's loss on any rows, summed residual by residual

With X̃ = [X, 1] (the bias last) the optimum solves the normal equations X̃ᵀX̃ β = X̃ᵀy. We accumulate the
Gram matrix of the chunk [X̃, r], with r = y − X̃β₀, in float64 over chunks of rows, and solve it by
Cholesky; the inverse is never formed. β₀ is a first estimate, least squares on the first 2(d+1) rows.
Solving for the rest, δ = β − β₀, from the residuals r instead of y changes nothing in exact arithmetic
and makes the loss exact in one pass: Σ(y − X̃β)² = rᵀr − 2δᵀX̃ᵀr + δᵀX̃ᵀX̃δ, where rᵀr is of the size of
the answer. From y itself the same identity would subtract two numbers ~10⁵ times larger than the book's
loss (yᵀy and cᵀβ), losing five of float64's sixteen digits; the residuals keep all but one or two.
The correction δ is small, so the solve's rounding errors are small against β too. A singular X̃ᵀX̃
(a constant or duplicated feature) falls back to the minimum-norm least-squares solution.

Why not QR of the full X̃, the textbook-stable route: QR needs X̃ as one float64 matrix, a copy of the
whole dataset (1,000,000 × 101 in float64 is 808 MB) plus Householder workspace. The normal equations
read X once, a chunk at a time, and hold O(d²) numbers; their cost, squaring the condition number of X̃,
is a few of float64's 16 digits for well-conditioned designs like these (N(0, 1) or standardized
features): on NIST's certified Longley problem, standardized (condition number 1.2·10⁴), the answer
agrees with numpy's SVD-based lstsq to 1e-10 (tests/test_closed_form.py; docs/closed-form.md has the
digits). Solve on float64 numbers: the same solver on float32 data keeps ~6 digits only. Memory: one
float64 chunk ((d+2) × chunk_size), reused, on top of the data.

The eigenvalues of X̃ᵀX̃/n, computed for `excess_loss` anyway, also give the condition number and the
largest stable learning rate 2/λ_max (`ClosedForm.condition_number`, `.max_stable_lr`).
"""

import math
from dataclasses import dataclass

import torch

from linreg.functions import linreg, squared_loss

# Rows per float64 chunk of [X, 1, r]: small enough to stay in cache for its product with itself, which
# larger chunks do not (docs/performance.md, "The closed form").
CHUNK_SIZE = 4096


@dataclass
class ClosedForm:
    w: torch.Tensor  # (num_inputs, 1), float64
    b: torch.Tensor  # (1,), float64
    root: torch.Tensor  # (k, k) R with RᵀR = X̃ᵀX̃ / n (+ λ on the weights' diagonal): the curvature
    loss: float  # mean squared_loss of (w, b) on the rows it was solved on (the data's, without any penalty)
    eigenvalues: torch.Tensor  # (k,) of the same curvature, ascending: along its principal axes
    bias: bool = True  # X̃ = [X, 1] and k = d + 1; without a bias X̃ = X, k = d, and b is 0
    rank: int | None = None  # of X̃ᵀX̃ to float64's resolution of it; k where no column depends on others
    collinear: tuple[int, ...] = ()  # the columns of X̃ in its (near) null space (d: the intercept), if rank < k

    @property
    def condition_number(self) -> float:
        """λ_max / λ_min of X̃ᵀX̃ / n: how many times slower (S)GD closes in along the flattest direction
        than the steepest allows; inf where the columns are collinear to float64's resolution (see rank)."""
        if self.rank is not None and self.rank < len(self.eigenvalues):
            return math.inf
        low, high = float(self.eigenvalues[0]), float(self.eigenvalues[-1])
        return high / low if low > 0 else math.inf

    @property
    def max_stable_lr(self) -> float:
        """2 / λ_max: gradient descent on the mean squared_loss diverges for any larger lr."""
        return 2 / float(self.eigenvalues[-1])


def first_estimate(X: torch.Tensor, y: torch.Tensor, bias: bool = True) -> torch.Tensor:
    """β₀: least squares on the first 2k rows, X̃ β₀ ≈ y, in float64 on the CPU: (k, 1).

    Any β₀ gives the same answer; a good one keeps the residuals, and so the cancellation, small.
    gelsd copes with rows too few or too alike to determine it (then β₀ is their minimum-norm fit)."""
    rows = 2 * (X.shape[1] + bias)
    X0 = X[:rows].double().cpu()  # (rows, d)
    if bias:
        X0 = torch.nn.functional.pad(X0, (0, 1), value=1.0)  # [X, 1]: (rows, d+1)
    return torch.linalg.lstsq(X0, y[:rows].double().cpu().reshape(-1, 1), driver="gelsd").solution


def closed_form(
    X: torch.Tensor, y: torch.Tensor, chunk_size: int = CHUNK_SIZE, weight_decay: float = 0.0, bias: bool = True
) -> ClosedForm:
    """β minimizing the mean squared_loss, plus weight_decay · ‖w‖²/2 when it is not 0: ridge regression,
    (X̃ᵀX̃ + nλ·I_w) β = X̃ᵀy with I_w the identity on the weights' block (b is not penalized). X̃ = [X, 1],
    or X itself for a model without a bias (`bias=False`: no intercept, b = 0)."""
    n, d = X.shape
    k = d + bias  # columns of X̃
    beta0 = first_estimate(X, y, bias).to(X.device)  # (k, 1)
    G = torch.zeros(k + 1, k + 1, dtype=torch.float64, device=X.device)  # [X̃, r]ᵀ[X̃, r]
    # One chunk of [X̃, r], transposed: each column of it is a row. The product of a (k+1, chunk) matrix
    # with its own transpose is a little faster than that of the (chunk, k+1) one (docs/performance.md).
    B = torch.empty(k + 1, min(n, chunk_size), dtype=torch.float64, device=X.device)
    for start in range(0, n, chunk_size):
        Bc = B[:, : min(chunk_size, n - start)]  # (k+1, chunk)
        Bc[:d] = X[start : start + Bc.shape[1]].T  # converted to float64 as it is copied
        if bias:
            Bc[d] = 1.0
        Bc[k] = y[start : start + Bc.shape[1]].reshape(-1)
        Bc[k:] -= beta0.T @ Bc[:k]  # r = y − X̃β₀: (1, chunk)
        G.addmm_(Bc, Bc.T)  # one product gives X̃ᵀX̃, X̃ᵀr and rᵀr
    A, c, rr = G[:k, :k], G[:k, k:], G[k, k]  # (k, k), (k, 1), ()
    penalty = torch.zeros_like(A)  # nλ on the weights' diagonal: the penalty's curvature, summed over rows
    penalty.diagonal()[:d] = n * weight_decay
    # the gradient at β₀ + δ vanishes: (A + P)δ = c − Pβ₀ (c = X̃ᵀr is the data's part at β₀)
    L, info = torch.linalg.cholesky_ex(A + penalty)
    rhs = c - penalty @ beta0
    if info == 0:
        delta = torch.cholesky_solve(rhs, L)  # (k, 1)
    else:  # singular: minimum-norm solution (gelsd handles rank deficiency; it runs on the CPU)
        delta = torch.linalg.lstsq((A + penalty).cpu(), rhs.cpu(), driver="gelsd").solution.to(X.device)
    beta = beta0 + delta
    residual_sum = rr - 2 * (delta.T @ c).squeeze() + (delta.T @ A @ delta).squeeze()  # Σ(y − X̃β)²: the data's
    # A square root of the curvature (of the penalized loss) from its eigendecomposition: exists for singular A too.
    eigenvalues, Q = torch.linalg.eigh((A + penalty) / n)
    root = eigenvalues.clamp(min=0).sqrt()[:, None] * Q.T
    loss = max(float(residual_sum), 0.0) / (2 * n)
    rank, collinear = null_space(eigenvalues, Q)
    b = beta[d] if bias else torch.zeros(1, dtype=torch.float64, device=X.device)
    return ClosedForm(
        w=beta[:d],
        b=b,
        root=root,
        loss=loss,
        eigenvalues=eigenvalues.clamp(min=0),
        bias=bias,
        rank=rank,
        collinear=collinear,
    )


# Eigenvalues of X̃ᵀX̃/n below this share of the largest are numerical zeros: float64 resolves the Gram
# matrix's eigenvalues to ~1e-16 of the largest, so its columns are then collinear, or too nearly so to tell
# (a condition number of X̃ above ~10⁶), and the least-squares solution is not unique to float64's digits.
RANK_TOLERANCE = 1e-12


def null_space(eigenvalues: torch.Tensor, Q: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """(rank, the columns involved in the null space) of a Gram matrix from its eigendecomposition, k = len.

    A column is involved when the null space holds a real share of it: the norm of its row of the null
    space's basis V, ‖Vᵀe_j‖ (between 0 and 1, whatever basis eigh chose), is at least 1 % of the largest.
    A column outside the dependence has a share of rounding's size; one inside, however many columns the
    dependence spreads over (all 1001 of 1000 rows' [X, 1]), a share of the same order as the others'."""
    small = eigenvalues <= RANK_TOLERANCE * eigenvalues[-1].clamp(min=0)
    rank = len(eigenvalues) - int(small.sum())
    if rank == len(eigenvalues):
        return rank, ()
    share = Q[:, small].norm(dim=1)  # (k,): each column's part in the null space
    return rank, tuple(int(j) for j in (share >= 0.01 * share.max()).nonzero().reshape(-1))


def training_loss(solution: ClosedForm, X: torch.Tensor, y: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> float:
    """The solution's mean squared_loss over X, y, residual by residual in float64, a chunk at a time
    (a pass of its own: for other rows than those solved on, or to check `solution.loss`)."""
    total = 0.0
    for start in range(0, len(X), chunk_size):
        Xc, yc = X[start : start + chunk_size].double(), y[start : start + chunk_size].double().reshape(-1, 1)
        total += float(squared_loss(linreg(Xc, solution.w, solution.b), yc).sum())
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
