"""Benchmark of the closed form's two passes (`linreg-benchmark --closed-form`), on the CLI's synthetic data.

Each solve is timed against one float64 product XᵀX of the same data, made the same way (float32 rows
converted a chunk at a time), in the same run: the least any solve from the normal equations can cost.
Rows: that product; the normal equations, the cheap pass every run takes; the exact pass forced (Ozaki
slices, TSQR and refinement: what runs when the estimate asks for it). Medians of --repeats runs.
"""

import statistics
import time

import torch

from linreg.closed_form import closed_form
from linreg.functions import synthetic_data
from linreg.normal_equations import CHUNK_SIZE

WORKLOADS = [(1_000_000, 100), (100_000, 1000)]  # rows, features


def gram(X: torch.Tensor) -> torch.Tensor:
    """XᵀX in float64, a chunk of rows at a time: the reference."""
    G = torch.zeros(X.shape[1], X.shape[1], dtype=torch.float64)
    for start in range(0, len(X), CHUNK_SIZE):
        chunk = X[start : start + CHUNK_SIZE].double()
        G.addmm_(chunk.T, chunk)
    return G


def measure(repeats: int) -> None:
    print(f"closed form, CPU, {torch.get_num_threads()} threads; torch {torch.__version__}; medians of {repeats} runs")
    print(f"{'workload':>17} {'solve':>32} {'seconds':>8} {'ratio':>6} {'digits':>7}")
    for n, d in WORKLOADS:
        true_w = torch.randn(d, generator=torch.Generator().manual_seed(1), dtype=torch.float64).tolist()
        X, y = synthetic_data(true_w, 4.2, n, 0.01, torch.Generator().manual_seed(0), torch.float32)
        solves = {
            "XᵀX alone (one float64 product)": lambda X=X: gram(X),
            "normal equations (every run)": lambda X=X, y=y: closed_form(X, y, exact=False),
            "exact pass, forced": lambda X=X, y=y: closed_form(X, y, exact=True),
        }
        reference = None
        for label, solve in solves.items():
            seconds, result = [], None
            for _ in range(repeats):
                start = time.perf_counter()
                result = solve()
                seconds.append(time.perf_counter() - start)
            median = statistics.median(seconds)
            reference = reference or median
            digits = f"{result.digits:7.1f}" if hasattr(result, "digits") else f"{'':>7}"
            print(f"{f'{n:,} x {d}':>17} {label:>32} {median:>8.2f} {median / reference:>6.2f} {digits}")
