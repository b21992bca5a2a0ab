"""The one streamed pass before training on Parquet parts: the standardization's statistics, the rows per row
group, and the closed form's exact sums, cached by the files' fingerprint.

    summary = summarize(parts, columns, key, threshold, center=True)   # or read from the cache
    summary.mean, summary.std, summary.train_counts, summary.val_counts, summary.gram

- Mean and variance per feature over the training rows, merged group by group with Chan et al.'s update
  (means and sums of squared deviations, never raw sums of squares, which cancel for features far from 0).
- The closed form: `linreg.exact_gram.ExactGram` of the training rows, exact whatever the chunks, so one
  pass suffices and merges across ranks. Its column exponents come from the files' min/max statistics
  (Parquet writers keep them per row group), read before the pass; a file without them costs a first
  pass over the data for its largest values.
- Cached as JSON in $LINREG_CACHE (default ~/.cache/linreg), one file per data path and split, with the
  parts' fingerprint: a resume or a second run on the same files reads it instead of the data; files
  changed since (size, content, mtime, rows) are read again, and a warning line says so.
"""

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linreg.exact_gram import ExactGram
from linreg.file_stream import held_out
from linreg.fingerprint import changed
from linreg.parquet_parts import ParquetParts

VERSION = 1


@dataclass
class Summary:
    mean: torch.Tensor  # (d,) float64, over the training rows
    std: torch.Tensor  # (d,): the sample standard deviation, or with center=False the root mean square
    train_counts: torch.Tensor  # (groups,) int64: training rows in each row group
    val_counts: torch.Tensor  # (groups,): held-out rows
    gram: ExactGram  # of the training rows' [X, 1, y] (no 1 without a bias)


def cache_dir() -> Path:
    return Path(os.environ.get("LINREG_CACHE", Path.home() / ".cache" / "linreg"))


def summarize(parts: ParquetParts, columns: list[str], key: int, threshold: int, center: bool = True) -> Summary:
    """The pass, or its cached result (columns: the features, then the target)."""
    identity = json.dumps([VERSION, os.path.abspath(parts.source), columns, key, threshold, center])
    path = cache_dir() / f"summary-{hashlib.sha256(identity.encode()).hexdigest()[:24]}.json"
    now = parts.fingerprint()
    if path.exists():
        try:
            cached = json.loads(path.read_text())
            difference = changed(cached["fingerprint"], now)
            if difference is None:
                return from_json(cached)
            warnings.warn(f"{parts.source} changed since its cached pass ({difference}): read again", stacklevel=2)
        except (ValueError, KeyError):  # a damaged cache file is made again
            pass
    summary = summarize_now(parts, columns, key, threshold, center)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(to_json(summary) | {"fingerprint": now}))
    os.replace(temporary, path)  # whole or not at all, also with parallel runs writing the same one
    return summary


def summarize_now(parts: ParquetParts, columns: list[str], key: int, threshold: int, center: bool) -> Summary:
    d = len(columns) - 1
    ranges = [parts.column_range(name) for name in columns]
    if any(r is None for r in ranges):  # no statistics in some file: a first pass for the largest values
        largest = torch.zeros(len(columns), dtype=torch.float64)
        for g in range(len(parts.groups)):
            largest = torch.maximum(largest, parts.read_group(g, columns).abs().amax(0))
        ranges = [(-v, v) for v in largest.tolist()]
    # the provisional standardization for TSQR's preconditioner: any that makes the columns alike will do
    low, high = (torch.tensor([r[i] for r in ranges[:d]], dtype=torch.float64) for i in (0, 1))
    middle = (low + high) / 2 if center else torch.zeros(d, dtype=torch.float64)
    spread = torch.maximum(high - middle, middle - low)
    spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    exponents = [math.frexp(max(abs(lo), abs(hi)))[1] for lo, hi in ranges]
    exponents = exponents[:d] + ([1] if center else []) + exponents[d:]
    gram = ExactGram(exponents, middle, spread, bias=center)
    n, mean, m2 = 0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    train_counts, val_counts = [], []
    for g, group in enumerate(parts.groups):
        table = parts.read_group(g, columns)  # (rows, d + 1)
        keep = ~held_out(torch.arange(group.start, group.start + group.rows), key, threshold)
        train_counts.append(int(keep.sum()))
        val_counts.append(group.rows - train_counts[-1])
        rows = table[keep]
        if len(rows) == 0:
            continue
        gram.update(rows[:, :d], rows[:, d:])
        m, batch_mean = len(rows), rows[:, :d].mean(0)  # Chan et al.: merge (n, mean, m2) with the group's
        batch_m2 = (rows[:, :d] - batch_mean).square().sum(0)
        delta = batch_mean - mean
        mean = mean + delta * (m / (n + m))
        m2 = m2 + batch_m2 + delta.square() * (n * m / (n + m))
        n += m
    std = (m2 / max(n - 1, 1)).sqrt() if center else (m2 / max(n, 1) + mean.square()).sqrt()
    if not center:
        mean = torch.zeros(d, dtype=torch.float64)
    counts = (torch.tensor(train_counts, dtype=torch.int64), torch.tensor(val_counts, dtype=torch.int64))
    return Summary(mean, std, *counts, gram)


def to_json(summary: Summary) -> dict:
    gram = summary.gram
    gram.spill()
    return {
        "mean": summary.mean.tolist(),
        "std": summary.std.tolist(),
        "train_counts": summary.train_counts.tolist(),
        "val_counts": summary.val_counts.tolist(),
        "gram": {
            "exponents": gram.exponents,
            "center": gram.center.tolist(),
            "scale": gram.scale.tolist(),
            "bias": gram.bias,
            "rows": gram.rows,
            "R": gram.R.tolist(),
            "spilled": gram.spilled.tolist(),  # Python ints: JSON keeps every digit
        },
    }


def from_json(state: dict) -> Summary:
    saved = state["gram"]
    f64 = torch.float64
    center, scale = torch.tensor(saved["center"], dtype=f64), torch.tensor(saved["scale"], dtype=f64)
    gram = ExactGram(saved["exponents"], center, scale, bias=saved["bias"])
    gram.rows, gram.R = saved["rows"], torch.tensor(saved["R"], dtype=f64)
    gram.spilled = np.array(saved["spilled"], dtype=object)
    mean, std = torch.tensor(state["mean"], dtype=f64), torch.tensor(state["std"], dtype=f64)
    counts = (torch.tensor(state[name], dtype=torch.int64) for name in ("train_counts", "val_counts"))
    return Summary(mean, std, *counts, gram)
