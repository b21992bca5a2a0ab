"""The one streamed pass before training on Parquet parts: the standardization's statistics, the rows per row
group, and the closed form's exact sums, cached by the files' fingerprint.

    summary = summarize(parts, columns, key, threshold, center=True)   # or read from the cache
    summary.mean, summary.std, summary.train_counts, summary.val_counts, summary.gram

- Mean and variance per feature over the training rows: each row group's mean and sum of squared
  deviations, merged in group order with Chan et al.'s update (never raw sums of squares, which cancel for
  features far from 0): the same bits whichever process read which group.
- The closed form: `linreg.exact_gram.ExactGram` of the training rows, exact whatever the chunks, so one
  pass suffices and the shares of several processes merge exactly. Its column exponents come from the
  files' min/max statistics (Parquet writers keep them per row group), read before the pass; a file
  without them costs a first pass over the data for its largest values.
- Processes started together by torchrun or SLURM each read a share of the groups and merge all shares
  (`shared_pass`); a single process, or Lightning's own launcher (whose other processes start after the
  first's pass and find it cached), reads them all.
- The held-out rows (about --val-fraction of the rows): a copy of their columns, as read, one Parquet file
  per row group in `heldout-…` beside the cache, named by the files' fingerprint. The evaluation after each
  epoch reads it, in the same row order as the data's, rather than every row group of the data.
- The row cache (linreg.row_cache), where asked for: every row's columns as read, row-major float64, for
  the stream to read every epoch instead of decoding the files; written by a pass that reads every group,
  or read for it alone when the pass is cached without it.
- Cached as JSON in $LINREG_CACHE (default ~/.cache/linreg), one file per data path and split, with the
  parts' fingerprint: a resume or a second run on the same files reads it instead of the data; files
  changed since (size, content, mtime, rows) are read again, and a warning line says so.
"""

import hashlib
import json
import math
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from linreg.exact_gram import ExactGram
from linreg.file_stream import split_rows
from linreg.fingerprint import changed
from linreg.parquet_parts import ParquetParts
from linreg.read_buffers import ReadBuffers
from linreg.row_cache import RowCache, RowCacheWriter, row_cache_writer, write_row_cache

VERSION = 3  # 3: the pass also copies the held-out rows
WAIT_SECONDS = 600  # for another process's share of the pass, before reading it here


@dataclass
class Summary:
    mean: torch.Tensor  # (d,) float64, over the training rows
    std: torch.Tensor  # (d,): the sample standard deviation, or with center=False the root mean square
    train_counts: torch.Tensor  # (groups,) int64: training rows in each row group
    val_counts: torch.Tensor  # (groups,): held-out rows
    gram: ExactGram  # of the training rows' [X, 1, y] (no 1 without a bias)
    heldout: Path | None = None  # a copy of the held-out rows' columns, one Parquet file per row group
    rows: Path | None = None  # the row cache (linreg.row_cache), where one was asked for; it may be absent


def cache_dir() -> Path:
    return Path(os.environ.get("LINREG_CACHE", Path.home() / ".cache" / "linreg"))


def summarize(
    parts: ParquetParts,
    columns: list[str],
    key: int,
    threshold: int,
    center: bool = True,
    now: dict | None = None,
    row_cache: bool = False,
) -> Summary:
    """The pass, or its cached result (columns: the features, then the target; now: the parts' fingerprint,
    if the caller has it). row_cache: the pass also writes the row cache (linreg.row_cache), where there is
    room and one process reads every group; a pass cached without it is followed by a read for it."""
    identity = json.dumps([VERSION, os.path.abspath(parts.source), columns, key, threshold, center])
    path = cache_dir() / f"summary-{hashlib.sha256(identity.encode()).hexdigest()[:24]}.json"
    now = parts.fingerprint() if now is None else now
    digest = hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()[:16]  # the files as they are
    heldout = path.with_name(f"{path.stem.replace('summary-', 'heldout-')}-{digest}") if threshold else None
    rows = path.with_name(f"{path.stem.replace('summary-', 'rows-')}-{digest}.f64") if row_cache else None
    rank, world = launched_ranks()
    cached = cached_pass(path, now, parts.source)
    if cached is not None:
        if rows is not None and world == 1 and RowCache.open(rows, parts.num_rows, len(columns)) is None:
            writer = row_cache_writer(rows, parts.num_rows, len(columns))
            if writer is not None:
                write_row_cache(parts, columns, writer)
        return replace(cached, heldout=heldout, rows=rows)
    if world > 1:  # every process of an external launcher at once: each reads its share, all merge all
        summary = shared_pass(parts, columns, key, threshold, center, path, now, rank, world, heldout)
    else:
        every = range(len(parts.groups))
        writer = row_cache_writer(rows, parts.num_rows, len(columns)) if rows is not None else None
        with writer or nullcontext():
            summary = combine(*group_pass(parts, columns, key, threshold, center, every, heldout, writer), center)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(to_json(summary) | {"fingerprint": now}))
    os.replace(temporary, path)  # whole or not at all, also with parallel runs writing the same one
    return replace(summary, heldout=heldout, rows=rows)


def cached_pass(path: Path, now: dict, source: str) -> Summary | None:
    """The pass cached at path, if it is of the files as they are now (`now`: their fingerprint); a warning
    line where they changed since. A damaged cache file is None: the pass is made again."""
    if not path.exists():
        return None
    try:
        cached = json.loads(path.read_text())
        difference = changed(cached["fingerprint"], now)
        if difference is None:
            return from_json(cached)
    except (ValueError, KeyError):
        return None
    warnings.warn(f"{source} changed since its cached pass ({difference}): read again", stacklevel=3)
    return None


def launched_ranks() -> tuple[int, int]:
    """(rank, world size) where torchrun or SLURM started every process at once; else (0, 1)."""
    for rank, world in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if rank in os.environ and world in os.environ:
            return int(os.environ[rank]), int(os.environ[world])
    return 0, 1


def gram_for(parts: ParquetParts, columns: list[str], center: bool) -> ExactGram:
    """An empty ExactGram for these columns: exponents from the files' min/max statistics (or a first pass
    for the largest values where a file lacks them), and a provisional standardization for TSQR."""
    d = len(columns) - 1
    ranges = [parts.column_range(name) for name in columns]
    if any(r is None for r in ranges):
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
    return ExactGram(exponents[:d] + ([1] if center else []) + exponents[d:], middle, spread, bias=center)


def group_pass(
    parts, columns, key, threshold, center, groups, heldout: Path | None = None, cache: RowCacheWriter | None = None
) -> tuple[dict, ExactGram]:
    """Over these groups: {group: (training rows, held-out rows, the training rows' mean, their sum of
    squared deviations)}, and the ExactGram of the training rows; each group's held-out rows, as read, into
    `heldout` (a folder) if given, and every row, as read, to `cache` (a row cache, the groups in order)."""
    d, gram, statistics = len(columns) - 1, gram_for(parts, columns, center), {}
    buffers = ReadBuffers()  # its helper decodes each group's next columns ahead (ParquetParts.read_group)
    try:
        for g in groups:
            group = parts.groups[g]
            table = parts.read_group(g, columns, buffers=buffers)  # (rows, d + 1)
            if cache is not None:
                cache.write(table)
            training, held = split_rows(group, key, threshold)
            if heldout is not None and len(held):
                write_heldout(heldout / f"group-{g:09d}.parquet", columns, table[held - group.start])
            rows = table[training - group.start]  # the training rows
            mean = rows[:, :d].mean(0) if len(rows) else torch.zeros(d, dtype=torch.float64)
            deviations = (rows[:, :d] - mean).square().sum(0)
            statistics[g] = (len(rows), group.rows - len(rows), mean.tolist(), deviations.tolist())
            if len(rows):
                gram.update(rows[:, :d], rows[:, d:])
    finally:
        buffers.close()
    return statistics, gram


def combine(statistics: dict, gram: ExactGram, center: bool) -> Summary:
    """The groups' statistics merged in group order (Chan et al.), whichever process read which group."""
    d = len(gram.scale)
    n, mean, m2 = 0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    for g in sorted(statistics):
        m, _, group_mean, group_m2 = statistics[g]
        if m == 0:
            continue
        delta = torch.tensor(group_mean, dtype=torch.float64) - mean
        mean = mean + delta * (m / (n + m))
        m2 = m2 + torch.tensor(group_m2, dtype=torch.float64) + delta.square() * (n * m / (n + m))
        n += m
    std = (m2 / max(n - 1, 1)).sqrt() if center else (m2 / max(n, 1) + mean.square()).sqrt()
    if not center:
        mean = torch.zeros(d, dtype=torch.float64)
    counts = (torch.tensor([statistics[g][i] for g in sorted(statistics)], dtype=torch.int64) for i in (0, 1))
    return Summary(mean, std, *counts, gram)


def shared_pass(
    parts, columns, key, threshold, center, path: Path, now: dict, rank: int, world: int, heldout
) -> Summary:
    """This process's share of the groups (g ≡ rank mod world), written beside the cache; then every share,
    merged. A share that does not come within WAIT_SECONDS is read here: slower, never stuck."""
    G = len(parts.groups)
    statistics, gram = group_pass(parts, columns, key, threshold, center, range(rank, G, world), heldout)
    share = path.with_name(f"{path.stem}.{rank}-of-{world}.json")
    share.parent.mkdir(parents=True, exist_ok=True)
    temporary = share.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"fingerprint": now, "statistics": statistics, "gram": gram.to_json()}))
    os.replace(temporary, share)
    for other in (r for r in range(world) if r != rank):
        theirs, deadline, saved = (
            path.with_name(f"{path.stem}.{other}-of-{world}.json"),
            time.monotonic() + WAIT_SECONDS,
            None,
        )
        while saved is None and time.monotonic() < deadline:
            try:
                saved = json.loads(theirs.read_text())
                saved = saved if changed(saved["fingerprint"], now) is None else None
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        if saved is None:  # not come: read here
            more, extra = group_pass(parts, columns, key, threshold, center, range(other, G, world), heldout)
        else:
            more, extra = {int(g): tuple(v) for g, v in saved["statistics"].items()}, ExactGram.from_json(saved["gram"])
        statistics.update(more)
        gram.merge(extra)
    return combine(statistics, gram, center)


def write_heldout(path: Path, columns: list[str], rows: torch.Tensor) -> None:
    """A row group's held-out rows (n, len(columns)) float64, as read, to a Parquet file of their own: whole
    or absent (a new name, then renamed), also with parallel runs writing the same one."""
    import pyarrow as pa
    from pyarrow import parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # "." first: never taken for a part
    pq.write_table(pa.table({name: rows[:, i].numpy() for i, name in enumerate(columns)}), temporary)
    os.replace(temporary, path)


def to_json(summary: Summary) -> dict:
    counts = {name: getattr(summary, name).tolist() for name in ("train_counts", "val_counts")}
    return {"mean": summary.mean.tolist(), "std": summary.std.tolist(), "gram": summary.gram.to_json()} | counts


def from_json(state: dict) -> Summary:
    mean, std = (torch.tensor(state[name], dtype=torch.float64) for name in ("mean", "std"))
    counts = (torch.tensor(state[name], dtype=torch.int64) for name in ("train_counts", "val_counts"))
    return Summary(mean, std, *counts, ExactGram.from_json(state["gram"]))
