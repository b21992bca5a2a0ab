"""The closed form's accurate pass: the Gram matrix of [X, 1, y] exactly, and the R factor of the
standardized [Z, 1, y] by TSQR, in one pass over chunks of rows that merge in any order.

    gram = ExactGram(exponents, center, scale, bias=True)    # 2^exponents[j] > column j's largest |value|
    for X, y in chunks:                                      # (m, d), (m, 1) float64, any m
        gram.update(X, y)
    gram.merge(other)                                        # another rank's or another chunk range's
    G, shift = gram.exact()                                  # [X, 1, y]ᵀ[X, 1, y] = G · 2^shift, G: Python ints
    gram.R                                                   # (d+2, d+2): [Z, 1, y] = QR (Z standardized)

Why exact. The normal equations XᵀX β = Xᵀy square X's condition number κ: formed in float64 they lose
2·log10(κ) digits, all sixteen at κ = 10⁸ (NIST's Filip). Formed exactly, they lose none: `refinement`
then solves them to float64's last digit, with R as the preconditioner, and no further pass over the data.

How, at matrix-product speed (the Ozaki scheme): each column is scaled by 2^-e (exact) into (-1, 1) and
cut into SLICES integers of SLICE_BITS bits each, a = Σ_p t_p 2^(-SLICE_BITS·p). A product t_pᵀ t_q of
two such slices over at most 2^ROW_BITS rows sums integers below 2^(2·SLICE_BITS + ROW_BITS) = 2^53: float64
holds it exactly, whatever the order of the sum. So aᵀa = Σ_(p,q) 2^(-SLICE_BITS·(p+q)) t_pᵀt_q is a sum of
exact products, added up in int64 and Python ints (a slice that is zero throughout, as float32 data's last
ones are, is skipped). Only what lies below the last slice is dropped: bits 2^-100 of a column's largest
value, beyond the last of any float64 value within 2^-47 of it. The result is the same integers whatever
the chunks and however they are merged: the accurate closed form is bit-identical across chunkings and ranks.

R comes from TSQR: the R of each chunk stacked under the R so far, factored again (Householder, float64).
It is only a preconditioner here: refinement with it converges for any κ(Z) well below 10¹⁶.
"""

import numpy as np
import torch

SLICE_BITS = 20
SLICES = 5  # 100 bits below each column's largest value
ROW_BITS = 13  # rows per product at most 2^13: 2·20 + 13 = 53
SPILL_EVERY = 2**7  # chunks added in int64 before moving to Python ints: 2^7 · 5 · 2^53 < 2^63


def triangle(rows: torch.Tensor) -> torch.Tensor:
    """R (k, k) of rows (m, k) = QR; with zero rows below where m < k (fewer rows than columns)."""
    R = torch.linalg.qr(rows, mode="r").R
    return torch.nn.functional.pad(R, (0, 0, 0, rows.shape[1] - len(R)))


class ExactGram:
    """The accurate pass's accumulator: see the module docstring."""

    def __init__(
        self, exponents: list[int], center: torch.Tensor, scale: torch.Tensor, bias: bool = True, device="cpu"
    ) -> None:
        k = len(exponents)  # columns of [X, 1, y] (or [X, y] without a bias)
        self.exponents, self.bias, self.device = list(exponents), bias, torch.device(device)
        self.center = center.to(self.device, torch.float64)  # (d,): Z = (X - center) / scale, what training sees
        self.scale = scale.to(self.device, torch.float64)
        # 2^-e per column, as float64: multiplying by it is exact (a power of two in range)
        self.unit = torch.tensor([2.0 ** (SLICE_BITS - e) for e in exponents], dtype=torch.float64, device=self.device)
        self.levels = torch.zeros(2 * SLICES - 1, k, k, dtype=torch.int64, device=self.device)  # by p + q
        self.spilled = np.zeros((2 * SLICES - 1, k, k), dtype=object)  # the same, in Python ints (0 is the int 0)
        self.pending = 0  # chunks in `levels` since the last spill
        self.R = torch.zeros(k, k, dtype=torch.float64, device=self.device)
        self.rows = 0

    def columns(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[X, 1, y] as given and [Z, 1, y] standardized, float64: (m, k) each."""
        X, y = X.to(self.device, torch.float64), y.to(self.device, torch.float64).reshape(-1, 1)
        ones = [torch.ones(len(X), 1, dtype=torch.float64, device=self.device)] if self.bias else []
        return torch.cat([X, *ones, y], dim=1), torch.cat([(X - self.center) / self.scale, *ones, y], dim=1)

    def update(self, X: torch.Tensor, y: torch.Tensor) -> None:
        for start in range(0, len(X), 2**ROW_BITS):
            raw, standardized = self.columns(X[start : start + 2**ROW_BITS], y[start : start + 2**ROW_BITS])
            self.R = triangle(torch.cat([self.R, standardized]))
            self.add_products(self.slices(raw))
            self.rows += len(raw)

    def slices(self, raw: torch.Tensor) -> list[torch.Tensor]:
        """The SLICES integer-valued (m, k) slices t_p of raw · 2^-e, most significant first."""
        v = raw * self.unit  # |v| < 2^SLICE_BITS
        if not bool((v.abs() < 2**SLICE_BITS).all()):
            raise ValueError("a value exceeds its column's 2^e: the exponents must bound every column")
        cut = []
        for _ in range(SLICES):
            t = v.trunc()  # the next SLICE_BITS bits
            cut.append(t)
            v = (v - t) * 2**SLICE_BITS  # both exact: the rest, shifted up
        return cut

    def add_products(self, t: list[torch.Tensor]) -> None:
        used = [p for p in range(SLICES) if bool(t[p].any())]  # float32 or short-mantissa data needs fewer slices
        for p in used:
            for q in (q for q in used if q >= p):
                product = t[p].T @ t[q]  # (k, k): exact integers below 2^53
                self.levels[p + q] += product.to(torch.int64)
                if q != p:
                    self.levels[p + q] += product.T.to(torch.int64)
        self.pending += 1
        if self.pending == SPILL_EVERY:
            self.spill()

    def spill(self) -> None:
        self.spilled += self.levels.cpu().numpy().astype(object)  # int64 to Python ints, exactly
        self.levels.zero_()
        self.pending = 0

    def merge(self, other: "ExactGram") -> None:
        """Add another accumulator's rows (another rank's, or another range of chunks)."""
        if other.exponents != self.exponents:
            raise ValueError("accumulators with different exponents do not add up")
        other.spill()
        self.spilled += other.spilled
        self.R = triangle(torch.cat([self.R, other.R.to(self.device)]))
        self.rows += other.rows

    def to_json(self) -> dict:
        """What JSON keeps of it, every digit (Python ints): linreg.file_summary caches the pass's."""
        self.spill()
        keep = {"exponents": self.exponents, "bias": self.bias, "rows": self.rows, "spilled": self.spilled.tolist()}
        return keep | {name: getattr(self, name).tolist() for name in ("center", "scale", "R")}

    @classmethod
    def from_json(cls, saved: dict) -> "ExactGram":
        center, scale, R = (torch.tensor(saved[name], dtype=torch.float64) for name in ("center", "scale", "R"))
        gram = cls(saved["exponents"], center, scale, bias=saved["bias"])
        gram.rows, gram.R, gram.spilled = saved["rows"], R, np.array(saved["spilled"], dtype=object)
        return gram

    def exact(self) -> tuple[np.ndarray, list[int]]:
        """The Gram matrix of [X, 1, y] exactly: G[i, j] · 2^(shift[i] + shift[j]), G a (k, k) array of ints."""
        self.spill()
        top = 2 * (SLICES - 1)
        # a column a_j = X_j · 2^(SLICE_BITS - e_j) is Σ_p t_p 2^(-SLICE_BITS·p), p < SLICES; t_pᵀt_q weighs
        # 2^(-SLICE_BITS·(p+q)) = 2^(SLICE_BITS·(top - (p+q))) / 2^(SLICE_BITS·top)
        G = sum(self.spilled[level] * (1 << (SLICE_BITS * (top - level))) for level in range(top + 1))
        shift = [e - SLICE_BITS - SLICE_BITS * top // 2 for e in self.exponents]
        return G, shift
