"""Iterative refinement of the exact normal equations: the least-squares coefficients of the data as given,
to float64's last digit, from `linreg.exact_gram` and no further pass over the data.

    R, _ = preconditioner(gram, weight_decay)    # (k, k), of full rank
    solution = refine(gram, R, weight_decay)
    solution.c          # (k,) float64: [w, b] in the data's units (b last; no b without a bias)
    solution.beta       # (k,) float64: the same in the standardized units the model trains in
    solution.steps, solution.correction, solution.loss

The unknowns are the data's coefficients c, kept exactly as integers C with c_j = C_j · 2^-(F + shift_j).
Each step computes the gradient g = Xᵀy − XᵀX c exactly, in Python integers (G is exact), and corrects c by
δ = (RᵀR)⁻¹ g in the standardized coordinates, R from TSQR (float64). With an exact g the step contracts
the error by ~10⁻¹⁶·κ(Z) whatever δ's own rounding: a few steps reach float64's resolution for any κ(Z)
well below 10¹⁶ (Filip's standardized κ is ~10⁸: three steps). The answer is then the exact solution of
the normal equations, rounded once, and so the same whatever R's rounding, the chunks or the ranks.

Coordinates: the model trains on Z = (X − center) / scale, so its β and the data's c are related by
β_w = scale · c_w, β_b = c_b + center · c_w (T below: β = T c); gradients map by T⁻ᵀ.
"""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from linreg.exact_gram import ExactGram

MAX_STEPS = 30
CONVERGED = 2.0**-80  # a correction this small against the coefficients: far below float64's 2^-53


@dataclass
class Refined:
    c: torch.Tensor  # (k,) float64: the data's coefficients, [w, b]
    beta: torch.Tensor  # (k,) float64: the model's (standardized) coefficients
    loss: float  # mean squared_loss of c on the rows, exactly (then rounded)
    steps: int
    correction: float  # the last step's size against the coefficients: < CONVERGED once converged


def to_model(c: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, bias: bool) -> torch.Tensor:
    """β = T c: the data's coefficients (k,) in the model's standardized coordinates."""
    d = len(scale)
    beta = c.clone()
    beta[:d] = c[:d] * scale
    if bias:
        beta[d] = c[d] + (center * c[:d]).sum()
    return beta


def to_data(beta: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, bias: bool) -> torch.Tensor:
    """c = T⁻¹ β."""
    d = len(scale)
    c = beta.clone()
    c[:d] = beta[:d] / scale
    if bias:
        c[d] = beta[d] - (center * c[:d]).sum()
    return c


def dyadic(numerator: int, exponent: int) -> Fraction:
    return Fraction(numerator) * Fraction(2) ** exponent


def preconditioner(gram: ExactGram, weight_decay: float = 0.0, center=None, scale=None):
    """(R (k, k), Qᵀy (k,)) of [Z, 1] = QR in the model's coordinates Z = (X − center) / scale (the gram's own
    by default), from TSQR's R; with nλ on the weights' diagonal of RᵀR, the penalty's root stacked under."""
    k = len(gram.exponents) - 1
    d = k - gram.bias
    center = gram.center.cpu() if center is None else center.double().cpu()
    scale = gram.scale.cpu() if scale is None else scale.double().cpu()
    R, z = gram.R[:k, :k].cpu(), gram.R[:k, k].cpu()  # TSQR's, in the gram's coordinates
    # β_gram = A β_model: [Z_gram, 1] β_gram = [Z_model, 1] β_model
    A = torch.stack([to_model(to_data(e, center, scale, gram.bias), gram.center.cpu(), gram.scale.cpu(), gram.bias)
                     for e in torch.eye(k, dtype=torch.float64)], dim=1)  # fmt: skip
    Q, R = torch.linalg.qr(R @ A)
    z = Q.T @ z
    if weight_decay:
        root = torch.zeros(d, k, dtype=torch.float64)
        root[:, :d] = torch.eye(d, dtype=torch.float64) * (gram.rows * weight_decay) ** 0.5
        R = torch.linalg.qr(torch.cat([R, root]), mode="r").R
    return R, z


def refine(gram: ExactGram, R: torch.Tensor, weight_decay: float = 0.0, center=None, scale=None, start=None) -> Refined:
    """The exact normal equations' solution, (XᵀX + P) c = Xᵀy, P = nλ·scale² on the weights' diagonal; R
    from `preconditioner`, of full rank, in the coordinates of center and scale (the gram's by default)."""
    G, shift = gram.exact()  # k + 1 columns: [X, 1, y]
    k, n = len(shift) - 1, gram.rows
    d = k - gram.bias
    center = gram.center.cpu() if center is None else center.double().cpu()
    scale = gram.scale.cpu() if scale is None else scale.double().cpu()
    if start is None:  # the QR solution of the gram's coordinates: R β = Qᵀy
        start = torch.linalg.solve_triangular(gram.R[:k, :k].cpu(), gram.R[:k, k:].cpu(), upper=True).reshape(-1)
        start = to_data(start, gram.center.cpu(), gram.scale.cpu(), gram.bias)
    penalty = [Fraction(n) * Fraction(weight_decay) * Fraction(float(s)) ** 2 for s in scale.tolist()]
    # C_j = c_j 2^(F + shift_j): the largest term gets 2^120 of resolution; F ≥ -shift_y keeps Xᵀy integral
    largest = max((abs(float(v)) * 2.0**s for v, s in zip(start.tolist(), shift, strict=False)), default=1.0)
    F = max(120 - int(np.frexp(largest or 1.0)[1]), -shift[k])
    C = [round(Fraction(v) * Fraction(2) ** (F + s)) for v, s in zip(start.tolist(), shift, strict=False)]
    C = np.array(C, dtype=object)
    Gxx, Gxy = G[:k, :k], G[:k, k] * (1 << (shift[k] + F))
    correction, previous = float("inf"), float("inf")
    for step in range(1, MAX_STEPS + 1):
        h = Gxy - Gxx.dot(C)  # Xᵀ(y − Xc) in units of 2^(shift_j − F): exact
        g = [dyadic(int(h[j]), shift[j] - F) - (penalty[j] * dyadic(int(C[j]), -F - shift[j]) if j < d else 0)
             for j in range(k)]  # fmt: skip
        g = torch.tensor([float(v) for v in g], dtype=torch.float64)
        g_model = g.clone()  # T⁻ᵀ g: the gradient with respect to β
        if gram.bias:
            g_model[:d] = g[:d] / scale - center / scale * g[d]
        else:
            g_model = g / scale
        delta = torch.cholesky_solve(g_model.reshape(-1, 1), R.T, upper=False).reshape(-1)  # (RᵀR)⁻¹ g
        delta_c = to_data(delta, center, scale, gram.bias)
        scaled = [Fraction(v) * Fraction(2) ** (F + s) for v, s in zip(delta_c.tolist(), shift, strict=False)]
        C = C + np.array([round(v) for v in scaled], dtype=object)
        size = max(abs(float(v)) for v in scaled) if scaled else 0.0
        correction = size / max(max(abs(float(v)) for v in C), 1.0)
        if correction < CONVERGED or (step > 3 and correction > previous / 2):  # converged, or not converging
            break
        previous = correction
    c = torch.tensor([float(dyadic(int(C[j]), -F - shift[j])) for j in range(k)], dtype=torch.float64)
    return Refined(c, to_model(c, center, scale, gram.bias), exact_loss(G, shift, c, n), step, correction)


def exact_loss(G: np.ndarray, shift: list[int], c: torch.Tensor, n: int) -> float:
    """Σ(y − X c)² / 2n for the float64 c, exactly (then rounded): yᵀy − 2cᵀXᵀy + cᵀXᵀXc from exact G."""
    k = len(c)
    exact = [Fraction(float(v)) * Fraction(2) ** s for v, s in zip(c.tolist(), shift, strict=False)]
    D = max(max((x.denominator.bit_length() - 1 for x in exact), default=0), -shift[k], 0)
    C = np.array([int(x * (1 << D)) for x in exact], dtype=object)  # exact: c̃ · 2^D
    y_scaled = 1 << (shift[k] + D)
    total = G[k, k] * y_scaled * y_scaled - 2 * y_scaled * int(C.dot(G[:k, k])) + int(C.dot(G[:k, :k].dot(C)))
    return float(Fraction(int(total), 2 * n) / Fraction(2) ** (2 * D))
