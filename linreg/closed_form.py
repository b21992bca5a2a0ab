"""The book's closed form for linear regression, β = (XᵀX)⁻¹Xᵀy, solved soundly in chunks.

    solution = closed_form(X, y)      # X: (n, num_inputs), y: (n, 1): one pass over the rows
    solution.w, solution.b
    training_loss(solution, X, y)     # its loss: a second pass (BookReport sums it during an evaluation)
    excess_loss(solution, w, b)       # how far SGD's (w, b) is above the optimum, in loss

With X̃ = [X, 1] (the bias last) the optimum solves the normal equations X̃ᵀX̃ β = X̃ᵀy. We accumulate the
small (d+1)×(d+1) matrix X̃ᵀX̃ and the vector X̃ᵀy in float64 over chunks of rows and solve them by
Cholesky; the inverse is never formed. A singular X̃ᵀX̃ (a constant or duplicated feature) falls back to
the minimum-norm least-squares solution.

Why not QR of the full X̃, the textbook-stable route: QR needs X̃ as one float64 matrix, a copy of the
whole dataset (1,000,000 × 101 in float64 is 808 MB) plus Householder workspace. The normal equations
read X once, a chunk at a time, and hold O(d²) numbers; their cost, squaring the condition number of X̃,
is a few of float64's 16 digits for well-conditioned designs like these (N(0, 1) or standardized
features). Memory: one float64 chunk (chunk_size × d) on top of the data.
"""

from dataclasses import dataclass

import torch

from linreg.functions import linreg, squared_loss

CHUNK_SIZE = 65536


@dataclass
class ClosedForm:
    w: torch.Tensor  # (num_inputs, 1), float64
    b: torch.Tensor  # (1,), float64
    root: torch.Tensor  # (d+1, d+1) R with RᵀR = X̃ᵀX̃ / n: the loss's curvature, for excess_loss
    # mean squared_loss of (w, b) on the data it was solved on: not known when solved (see training_loss)
    loss: float | None = None


def _chunks(X: torch.Tensor, y: torch.Tensor, chunk_size: int):
    """Float64 chunks of rows: (chunk, d), (chunk, 1). A float64 X gives views; float32 one chunk copy."""
    for start in range(0, len(X), chunk_size):
        yield X[start : start + chunk_size].double(), y[start : start + chunk_size].double().reshape(-1, 1)


def closed_form(X: torch.Tensor, y: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> ClosedForm:
    n, d = X.shape
    A = torch.zeros(d + 1, d + 1, dtype=torch.float64, device=X.device)  # X̃ᵀX̃
    c = torch.zeros(d + 1, 1, dtype=torch.float64, device=X.device)  # X̃ᵀy
    for Xc, yc in _chunks(X, y, chunk_size):
        A[:d, :d] += Xc.T @ Xc
        A[:d, d] += Xc.sum(0)  # the column of ones: Xᵀ1, 1ᵀX and 1ᵀ1 = chunk length
        A[d, :d] = A[:d, d]
        A[d, d] += len(Xc)
        c[:d] += Xc.T @ yc
        c[d] += yc.sum()
    L, info = torch.linalg.cholesky_ex(A)
    if info == 0:
        beta = torch.cholesky_solve(c, L)  # (d+1, 1)
    else:  # singular: minimum-norm solution (gelsd handles rank deficiency; it runs on the CPU)
        beta = torch.linalg.lstsq(A.cpu(), c.cpu(), driver="gelsd").solution.to(X.device)
    # A square root of the curvature from its eigendecomposition: exists for singular A too.
    eigenvalues, Q = torch.linalg.eigh(A / n)
    root = eigenvalues.clamp(min=0).sqrt()[:, None] * Q.T
    return ClosedForm(w=beta[:d], b=beta[d], root=root)


def loss_sum(solution: ClosedForm, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ squared_loss of the solution over rows X (n, d), y (n, 1), in float64: a 0-d tensor.

    The loss is not computed in closed_form: its rows are read once there, before β is known, and the
    one-pass formula (yᵀy − cᵀβ) / 2n cancels away about six of float64's digits at the book's noise.
    BookReport adds it up in the first epoch-end evaluation, which reads every training row anyway.
    """
    return squared_loss(linreg(X.double(), solution.w, solution.b), y.double()).sum()


def training_loss(solution: ClosedForm, X: torch.Tensor, y: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> float:
    """The solution's mean squared_loss over X, y, reading them a chunk at a time (a pass of its own)."""
    return float(sum(loss_sum(solution, Xc, yc) for Xc, yc in _chunks(X, y, chunk_size))) / len(X)


# Solving costs about n·(d+1)² multiply-adds in large matrix products, an epoch of SGD about n·(d+1)·4 in
# small ones, far slower per multiply-add. Measured on 2 CPU cores (solve vs one epoch at batch 1000):
# 1M × 100, 1.77 s vs 5.61 s; 100k × 1000, 8.35 s vs 3.15 s. The two break even at d + 1 ≈ 320 to 380 a
# training epoch: the closed form is solved up to the lower one.
WIDTH_PER_EPOCH = 320


def worth_solving(num_inputs: int, epochs: float) -> bool:
    """Whether the closed form costs less than the training it is compared with (--closed-form auto)."""
    return num_inputs + 1 <= WIDTH_PER_EPOCH * epochs


def excess_loss(solution: ClosedForm, w: torch.Tensor, b: torch.Tensor) -> float:
    """Loss of (w, b) minus the optimum's, on the data the solution was solved on.

    For least squares L(θ) - L(β) = ½ (θ - β)ᵀ (X̃ᵀX̃ / n) (θ - β) exactly, so this is ½‖R(θ - β)‖²:
    never negative, and free of the cancellation of subtracting two nearly equal losses once SGD is close
    to the optimum (in float32 the losses agree to all 7 digits well before the parameters do).
    """
    theta = torch.cat([w.detach().reshape(-1), b.detach().reshape(-1)]).to(solution.root)  # (d+1,)
    beta = torch.cat([solution.w.reshape(-1), solution.b])
    return 0.5 * float((solution.root @ (theta - beta)).square().sum())
