"""Benchmark of streamed Parquet (`linreg-benchmark --streamed-files`): memory, speed, reads, the reader.

Writes folders of Parquet parts (float64 N(0, 1) features, 250,000-row parts of 65,536-row groups) into
a temporary folder, then, medians of --repeats rounds (each round runs every configuration in turn, so
that the machine's drift falls on streamed and in-memory runs alike):
- peak RSS of `linreg-train --data F --target y --streaming` for one epoch at batch 1000, at 1M and 4M
  rows × 30 and above a 1000-row run, against the float64 data; the same with --no-row-cache (the
  Parquet files decoded in the epoch), and in memory;
- the epoch's seconds (summary.json's train_seconds: the epoch, and for the in-memory run its evaluation
  of every row, without the setup before it) and the fit's (fit_seconds: with that setup, where the
  in-memory path makes its standardized copy of the data), streamed, from the row cache and from the
  files, against in memory, at 1M × 30 and 1M × 100;
- the reader alone (linreg.parquet_parts.read_group into float32 rows, standardized, as a stream reads
  each group into its slot), and its decoding alone (the memory-mapped blocks of columns it decodes),
  against pyarrow's own ParquetFile.read_row_group of the same groups (the fastest of --repeats each);
  and a stream's read of the same rows from the row cache standardized for float32 training
  (linreg.training_rows), from the page cache;
- the row groups read in an epoch by 2 processes, simulated in one (RowGroupSampler and RowGroupStream
  per rank), against the groups there are.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from linreg.cli.whole_process import peak_run

SIZES = {"tiny": (1000, 30), "1m": (1_000_000, 30), "4m": (4_000_000, 30), "1m100": (1_000_000, 100)}


def write_parts(folder: str, rows: int, features: int, part_rows: int = 250_000) -> str:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    w = rng.normal(size=features)
    os.makedirs(folder)
    for i, start in enumerate(range(0, rows, part_rows)):
        X = rng.normal(size=(min(part_rows, rows - start), features))
        columns = {f"x{j}": X[:, j] for j in range(features)} | {"y": X @ w + 4.2 + rng.normal(0, 0.01, len(X))}
        pq.write_table(pa.table(columns), f"{folder}/part-{i:05d}.parquet", row_group_size=65536)
    return folder


PATHS = {"streamed": ["--streaming"], "no cache": ["--streaming", "--no-row-cache"], "in memory": []}


def train(folder: str, logdir: str, path: str) -> tuple[float, float, float, float]:
    """(seconds, peak MiB, fit seconds, epoch seconds) of one linreg-train process (a key of PATHS), its
    pass cached."""
    cmd = [sys.executable, "-m", "linreg.cli.train", "--data", folder, "--target", "y", "--batch-size", "1000",
           "--max-epochs", "1", "--num-val", "0", "--closed-form", "never", "--logdir", logdir]  # fmt: skip
    seconds, peak = peak_run([*cmd, *PATHS[path]])
    newest = max(Path(logdir).iterdir(), key=lambda p: int(p.name.split("_")[1]))
    summary = json.loads((newest / "summary.json").read_text())
    return seconds, peak, summary["fit_seconds"], summary["train_seconds"]


def reader(folder: str, repeats: int) -> tuple[float, float, float, float]:
    """Seconds to read every group: pyarrow's read_row_group, the stream's whole read (into float32 rows,
    standardized), its decoding alone (the memory-mapped blocks of columns read_group decodes), and the
    stream's read of the rows from the standardized row cache that `train` left."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    from linreg.parquet_parts import COLUMN_BYTES, ParquetParts
    from linreg.read_buffers import ReadBuffers
    from linreg.streamed_file_data import StreamedFileRegressionDataModule
    from linreg.training_rows import TrainingRows

    parts = ParquetParts.open(folder)
    center, scale = (
        torch.zeros(len(parts.names), dtype=torch.float64),
        torch.ones(len(parts.names), dtype=torch.float64),
    )
    slot = np.empty((max(g.rows for g in parts.groups), len(parts.names)), dtype=np.float32)  # a pool's slot
    dm = StreamedFileRegressionDataModule(folder, "y", num_val=0, batch_size=1000)  # the pass, cached by `train`
    rows = dm.stream_rows()  # standardized for float32 by `train` (columns: x0, x1, ..., y, as the parts')
    if not isinstance(rows, TrainingRows):
        sys.exit(f"{folder}: no standardized row cache")
    X, y = np.empty_like(slot[:, :-1]), np.empty_like(slot[:, -1:])  # a pool keeps X and y apart, each contiguous
    arrow, ours, decoding, cached, buffers = [], [], [], [], ReadBuffers()
    for _ in range(repeats):
        start = time.perf_counter()
        for g in parts.groups:
            pq.ParquetFile(parts.paths[g.part], pre_buffer=False).read_row_group(g.index)
        arrow.append(time.perf_counter() - start)
        start = time.perf_counter()
        for g in range(len(parts.groups)):  # as RowGroupStream.read does: into a slot of rows, [X, y]
            parts.read_group(g, parts.names, torch.float32, center, scale, out=slot[: parts.groups[g].rows],
                             buffers=buffers)  # fmt: skip
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        for g, group in enumerate(parts.groups):
            step = max(1, COLUMN_BYTES // (8 * group.rows))
            with parts.mapped(g) as read:
                for j in range(0, len(parts.names), step):
                    read(parts.names[j : j + step])
        decoding.append(time.perf_counter() - start)
        start = time.perf_counter()
        for group in parts.groups:
            rows.read_into(group.start, X[: group.rows], y[: group.rows], center, scale, buffers)
        cached.append(time.perf_counter() - start)
    buffers.close()
    return min(arrow), min(ours), min(decoding), min(cached)


def group_reads(folder: str, world_size: int) -> tuple[int, int]:
    import torch

    from linreg.row_group_pool import RowGroupStream, stream_capacity
    from linreg.streamed_file_data import StreamedFileRegressionDataModule

    dm = StreamedFileRegressionDataModule(folder, "y", num_val=0, batch_size=1000 // world_size)
    reads = 0
    for rank in range(world_size):
        stream = RowGroupStream(dm.parts, dm.columns, dm.mean, dm.std, "cpu", torch.float32,
                                stream_capacity(dm.parts, dm.hparams.window_rows))  # fmt: skip
        read, calls = stream.read, []
        stream.read = lambda g, slot, inline=False, read=read, calls=calls: calls.append(g) or read(g, slot, inline)
        dm.ranks = lambda rank=rank: (rank, world_size)
        dm.train_stream = stream
        sampler = dm.train_sampler()
        for batch in sampler.batches(0):
            stream[batch]
        stream.executor.shutdown()
        reads += len(calls)
    return reads, len(dm.parts.groups)


def measure(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        os.environ["LINREG_CACHE"] = f"{root}/cache"
        folders = {}
        for name, (rows, features) in SIZES.items():  # in a child: a big parent's pages count in its children's peaks
            folders[name] = f"{root}/{name}"
            call = f"write_parts({folders[name]!r}, {rows}, {features})"
            code = f"from linreg.cli.benchmark_stream import write_parts; {call}"
            peak_run([sys.executable, "-c", code])
        for name in folders:  # the pass before training, and the row cache, cached: not what is measured here
            train(folders[name], f"{root}/logs", "streamed")
        keys = [(name, path) for name in folders for path in PATHS if name != "4m" or path == "streamed"]
        runs = {key: [] for key in keys}
        for _ in range(repeats):  # round after round, each path in turn: the machine's drift falls on all alike
            for name, path in keys:
                runs[(name, path)].append(train(folders[name], f"{root}/logs", path))
        print(f"streamed Parquet, medians of {repeats} rounds; 250,000-row parts of 65,536-row groups, float64")
        print(f"{'data':>15} {'path':>10} {'seconds':>8} {'peak MiB':>9} {'above tiny':>11} {'x data':>7} {'fit s':>6}"
              f" {'epoch s':>8}")  # fmt: skip
        for (name, path), rs in runs.items():
            rows, features = SIZES[name]
            seconds, peak, fit, epoch = (statistics.median(r[i] for r in rs) for i in range(4))
            tiny = statistics.median(r[1] for r in runs[("tiny", path)])
            data = rows * (features + 1) * 8 / 2**20
            line = f"{f'{rows:,} x {features}':>15} {path:>10} {seconds:>8.2f} {peak:>9.0f} {peak - tiny:>11.0f}"
            print(f"{line} {(peak - tiny) / data:>7.2f} {fit:>6.2f} {epoch:>8.2f}")
        print()
        for name in ("1m", "1m100"):
            for i, what in ((3, "epoch"), (2, "fit")):
                s = {path: statistics.median(r[i] for r in runs[(name, path)]) for path in PATHS}
                ratios = [f"{s[path] / s['in memory']:.2f} x" for path in ("streamed", "no cache")]
                print(
                    f"{name}: a streamed {what} costs {ratios[0]} the in-memory one ({ratios[1]} without the row cache)"
                )
        for name in ("1m", "1m100"):
            arrow, ours, decoding, cached = reader(folders[name], repeats)
            seconds = f"({ours:.3f} s vs {arrow:.3f} s; its decoding alone {arrow / decoding:.2f}, {decoding:.3f} s)"
            print(f"{name}: the reader runs at {arrow / ours:.2f} of pyarrow's read_row_group {seconds}")
            print(f"{name}: the stream reads its standardized rows at {arrow / cached:.2f} x that ({cached:.3f} s)")
        reads, groups = group_reads(folders["1m"], 2)
        print(f"1m: 2 processes read {reads} row groups in an epoch, {reads / groups:.2f} x the {groups} there are")
