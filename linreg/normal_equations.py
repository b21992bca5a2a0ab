"""The closed form's cheap pass: the normal equations of the standardized design, over residuals, in float64,
and an estimate of how many digits their solution has.

    normal = NormalEquations(beta0, center, scale, bias=True)    # beta0: a first estimate (k, 1)
    for X, y in chunks:                                          # (m, d), (m, 1), any dtype
        normal.update(X, y)
    normal.merge(other)                                          # another rank's, with the same beta0
    cheap = normal.solve(weight_decay)                           # beta, loss, eigen..., digits

The model trains on Z = (X − center) / scale (file data is standardized; synthetic data is not: center 0,
scale 1), with Z̃ = [Z, 1] (or Z without a bias). We accumulate the Gram matrix of the chunk [Z̃, r], with
r = y − Z̃β₀, in float64, and solve it by Cholesky; the inverse is never formed. Solving for the rest,
δ = β − β₀, from the residuals r instead of y changes nothing in exact arithmetic and makes the loss exact
in one pass: Σ(y − Z̃β)² = rᵀr − 2δᵀZ̃ᵀr + δᵀZ̃ᵀZ̃δ, where rᵀr is of the size of the answer. From y itself
the same identity would subtract two numbers ~10⁵ times larger than the book's loss, losing five digits.

What it costs in accuracy: forming Z̃ᵀZ̃ squares Z̃'s condition number κ, so its solution loses ~2·log10(κ)
digits (`estimated_digits`). That is nothing for N(0, 1) or standardized features that are far from
collinear, and everything for a degree-10 polynomial; `linreg.closed_form` then takes the exact pass.
Its sums also bound each raw column's largest |value| (`bounds`), which the exact pass cuts into slices.
"""

import math
from dataclasses import dataclass

import torch

CHUNK_SIZE = 4096  # rows per float64 chunk: small enough to stay in cache for its product with itself
EPSILON = 2.0**-53  # float64's unit roundoff


@dataclass
class Cheap:
    beta: torch.Tensor  # (k, 1) float64: the solution, standardized coordinates
    loss: float  # mean squared_loss of the data (without any penalty)
    eigenvalues: torch.Tensor  # (k,) of (Z̃ᵀZ̃ + P)/n, ascending
    Q: torch.Tensor  # (k, k): their eigenvectors
    digits: float  # estimated correct digits of the data's coefficients, the fewest of any one
    normwise_digits: float  # the same for the weights as a vector (‖error‖/‖w‖), and the intercept


class NormalEquations:
    """The cheap pass's accumulator: see the module docstring."""

    def __init__(self, beta0: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, bias: bool = True) -> None:
        self.beta0, self.bias = beta0.double(), bias  # (k, 1)
        self.device = beta0.device
        self.center, self.scale = center.to(self.device, torch.float64), scale.to(self.device, torch.float64)
        k = len(beta0)
        self.G = torch.zeros(k + 1, k + 1, dtype=torch.float64, device=self.device)  # [Z̃, r]ᵀ[Z̃, r]
        self.standardized = bool((self.center != 0).any() or (self.scale != 1).any())  # else Z = X
        self.rows = 0

    def update(self, X: torch.Tensor, y: torch.Tensor) -> None:
        d, k = X.shape[1], len(self.beta0)
        # One chunk of [Z̃, r], transposed: each column of it is a row. The product of a (k+1, chunk) matrix
        # with its own transpose is a little faster than that of the (chunk, k+1) one (docs/performance.md).
        B = torch.empty(k + 1, min(len(X), CHUNK_SIZE), dtype=torch.float64, device=self.device)
        for start in range(0, len(X), CHUNK_SIZE):
            Xc, yc = X[start : start + CHUNK_SIZE].to(self.device), y[start : start + CHUNK_SIZE].to(self.device)
            Bc = B[:, : len(Xc)]  # (k+1, chunk)
            Bc[:d] = Xc.T  # converted to float64 as it is copied
            if self.standardized:  # Z, as the model's data is
                Bc[:d].sub_(self.center[:, None]).div_(self.scale[:, None])
            if self.bias:
                Bc[d] = 1.0
            Bc[k] = yc.reshape(-1)
            Bc[k:] -= self.beta0.T @ Bc[:k]  # r = y − Z̃β₀: (1, chunk)
            self.G.addmm_(Bc, Bc.T)  # one product gives Z̃ᵀZ̃, Z̃ᵀr and rᵀr
            self.rows += len(Xc)

    def merge(self, other: "NormalEquations") -> None:
        """Add another accumulator's rows (another rank's): the same first estimate, or the sums differ."""
        if not torch.equal(other.beta0.to(self.device), self.beta0):
            raise ValueError("accumulators over residuals of different first estimates do not add up")
        self.G += other.G.to(self.device)
        self.rows += other.rows

    def solve(self, weight_decay: float = 0.0) -> Cheap:
        """β minimizing the mean squared_loss, plus weight_decay · ‖w‖²/2: (Z̃ᵀZ̃ + nλ·I_w) β = Z̃ᵀy."""
        n, k, d = self.rows, len(self.beta0), len(self.scale)
        A, c, rr = self.G[:k, :k], self.G[:k, k:], self.G[k, k]  # (k, k), (k, 1), ()
        penalty = torch.zeros_like(A)  # nλ on the weights' diagonal: the penalty's curvature, summed over rows
        penalty.diagonal()[:d] = n * weight_decay
        # the gradient at β₀ + δ vanishes: (A + P)δ = c − Pβ₀ (c = Z̃ᵀr is the data's part at β₀)
        L, info = torch.linalg.cholesky_ex(A + penalty)
        rhs = c - penalty @ self.beta0
        if info == 0:
            delta = torch.cholesky_solve(rhs, L)  # (k, 1)
        else:  # singular: minimum-norm solution (gelsd handles rank deficiency; it runs on the CPU)
            delta = torch.linalg.lstsq((A + penalty).cpu(), rhs.cpu(), driver="gelsd").solution.to(self.device)
        beta = self.beta0 + delta
        residual_sum = rr - 2 * (delta.T @ c).squeeze() + (delta.T @ A @ delta).squeeze()  # Σ(y − Z̃β)²: the data's
        eigenvalues, Q = torch.linalg.eigh((A + penalty) / n)
        digits = [self.estimated_digits(beta, delta, eigenvalues * n, float(rr), each) for each in (True, False)]
        return Cheap(beta, max(float(residual_sum), 0.0) / (2 * n), eigenvalues.clamp(min=0), Q, *digits)

    def bounds(self) -> list[float]:
        """Upper bounds on max |X_j| (each j), then on max |y|, from the sums: ‖·‖∞ ≤ ‖·‖₂, X_j = scale_j·Z_j +
        center_j and y = Z̃β₀ + r; twice that, for the sums' rounding (an exponent costs one bit more)."""
        d, k = len(self.scale), len(self.beta0)
        G = self.G.cpu()
        columns = self.scale.cpu() * G.diagonal()[:d].sqrt() + self.center.cpu().abs() * math.sqrt(self.rows)
        beta0 = self.beta0.cpu()
        labels = float(beta0.T @ G[:k, :k] @ beta0).__abs__() ** 0.5 + float(G[k, k]).__abs__() ** 0.5
        return [2 * v for v in columns.tolist()] + [2 * labels]

    def estimated_digits(
        self, beta: torch.Tensor, delta: torch.Tensor, eigenvalues: torch.Tensor, rr: float, each: bool = True
    ) -> float:
        """The fewest correct significant digits of any of the data's coefficients, estimated (not bounded).

        Normwise in β, the error is ε·√k·κ(Z̃)²·(‖δ‖ + ‖r‖/σ_max) from forming Z̃ᵀZ̃ and Z̃ᵀr in float64, plus
        2ε‖β‖·κ(Z̃) at worst from rounding r (and Z), as a QR solve would have too. Those roundings are
        independent from row to row, so over n rows they average out to ~2ε‖β‖·k·λ̄/(√n·λ_min) (λ of Z̃ᵀZ̃/n,
        λ̄ their mean), the smaller of the two for n ≫ k². A weight w_j/scale_j keeps its share of the error;
        the data's intercept b − Σ center_j·w_j/scale_j gathers every weight's, times how far from 0 the
        features sit. `each`: the weights one by one (a weight far smaller than the rest has fewer digits of
        its own, whatever the method); else as one vector."""
        k, d, n = len(beta), len(self.scale), self.rows
        low, high = float(eigenvalues[0]), float(eigenvalues[-1])
        if not low > 0:
            return 0.0
        kappa = high / low  # of Z̃ᵀZ̃: κ(Z̃)²
        beta, delta = beta.reshape(-1).cpu(), delta.reshape(-1).cpu()
        spread = math.sqrt(max(rr, 0.0) / high)  # ‖r‖ / σ_max
        rounding = min(math.sqrt(kappa), k * float(eigenvalues.mean()) / (math.sqrt(n) * low))  # λ̄/λ_min
        error = math.sqrt(k) * kappa * (float(delta.norm()) + spread) + rounding * 2 * float(beta.norm())
        error *= EPSILON
        weights = beta[:d].abs() if each else beta[:d].norm().reshape(1)
        relative = [error / float(v) if v != 0 else math.inf for v in weights]
        if self.bias:
            center, scale = self.center.cpu(), self.scale.cpu()
            intercept = float(beta[d] - (center * beta[:d] / scale).sum())
            reach = 1 + float((center.abs() / scale).sum())
            gathered = error * reach + EPSILON * float((center * beta[:d] / scale).abs().sum())
            relative.append(gathered / abs(intercept) if intercept != 0 else math.inf)
        worst = max(relative, default=0.0)
        return min(-math.log10(worst), FLOAT64_DIGITS) if worst > 0 else FLOAT64_DIGITS


FLOAT64_DIGITS = -math.log10(EPSILON)  # 15.95: a coefficient rounded to float64 is within half an ulp


def first_estimate(X: torch.Tensor, y: torch.Tensor, center, scale, bias: bool = True) -> torch.Tensor:
    """β₀: least squares on the first 2k rows, Z̃ β₀ ≈ y, in float64 on the CPU: (k, 1).

    Any β₀ gives the same answer; a good one keeps the residuals, and so the cancellation, small.
    gelsd copes with rows too few or too alike to determine it (then β₀ is their minimum-norm fit)."""
    rows = 2 * (X.shape[1] + bias)
    Z0 = (X[:rows].double().cpu() - center.cpu()) / scale.cpu()  # (rows, d)
    if bias:
        Z0 = torch.nn.functional.pad(Z0, (0, 1), value=1.0)  # [Z, 1]: (rows, d+1)
    return torch.linalg.lstsq(Z0, y[:rows].double().cpu().reshape(-1, 1), driver="gelsd").solution
