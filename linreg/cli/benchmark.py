"""Benchmark: the book's plain loop against the project's Trainer path, on the same workloads.

    linreg-benchmark                          # CPU workloads, 3 repeats, medians (or: python scripts/benchmark.py)
    linreg-benchmark --accelerator gpu        # adds the 10M x 256 workloads and bandwidth
    linreg-benchmark --workloads book 1m --repeats 5 --json results.json
    linreg-benchmark --whole-process          # whole processes: start-up, and the book's script vs the CLI
    linreg-benchmark --closed-form            # the closed form's two passes against one XᵀX product
    linreg-benchmark --streamed-files         # streamed Parquet: memory at 1M and 4M rows, speed, reads

The paths and what each run times: linreg/cli/benchmark_paths.py, where every run gets a fresh process so
that its peak memory is its own. Ratios divide by the `book` path on the same workload, in the same run:
the machine is shared, so absolute times drift but ratios hold.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from linreg.cli import Parser, program
from linreg.cli.benchmark_paths import ALL_PATHS, PATHS, STREAMING, WORKLOADS, sync


def copy_bandwidth(device: torch.device, num_bytes: int = 2**30) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting the read and the write."""
    src = torch.empty(num_bytes // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    sync(device)
    return 2 * num_bytes * 10 / (time.perf_counter() - start)


def run_worker(workload: str, path: str, accelerator: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, "-m", "linreg.cli.benchmark_paths", "--workload", workload, "--path", path]
        out = subprocess.run([*cmd, "--accelerator", accelerator, "--result", f.name], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"benchmark worker {workload}/{path} failed:\n{out.stderr[-3000:]}")
        return json.loads(Path(f.name).read_text())


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog=program("benchmark.py"), description=__doc__.split("\n\n")[0])
    p.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--workloads", nargs="+", default=None, choices=list(WORKLOADS), help="default: all that fit")
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=ALL_PATHS)
    p.add_argument("--repeats", type=int, default=3, help="runs of each (workload, path); medians are shown")
    p.add_argument("--json", help="also write every measurement to this file")
    p.add_argument("--whole-process", action="store_true", help="time whole processes instead (whole_process.py)")
    p.add_argument("--closed-form", action="store_true", help="time the closed form's solves instead")
    p.add_argument("--streamed-files", action="store_true", help="streamed Parquet instead (benchmark_stream.py)")
    args = p.parse_args(argv)
    if args.streamed_files:
        from linreg.cli import benchmark_stream

        return benchmark_stream.measure(args.repeats)
    if args.closed_form:
        from linreg.cli import benchmark_closed_form

        return benchmark_closed_form.measure(args.repeats)
    if args.whole_process:
        from linreg.cli import whole_process

        whole_process.startup(args.repeats)
        whole_process.measure(args.repeats)
        print()
        return whole_process.files(args.repeats)

    gpu = args.accelerator == "gpu"
    workloads = args.workloads or [name for name, spec in WORKLOADS.items() if gpu or not spec[4]]
    paths = list(dict.fromkeys(["book", *args.paths]))  # the ratios need the book's loop

    def paths_of(w: str) -> list[str]:  # a streamed workload cannot be materialized for the book's loop
        return ["trainer"] if w in STREAMING else paths

    runs = {
        (w, p): [run_worker(w, p, args.accelerator) for _ in range(args.repeats)]
        for w in workloads
        for p in paths_of(w)
    }
    device = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device}; torch {torch.__version__}; medians of {args.repeats} runs\n")
    bandwidth = copy_bandwidth(torch.device("cuda")) if gpu else None
    header = f"{'workload':>9} {'path':>17} {'steps':>6} {'us/step':>9} {'examples/s':>11} {'ratio':>6}"
    header += f" {'total s':>8} {'peak RSS MiB':>13} {'RSS above tiny':>15}"
    header += f" {'peak GPU MiB':>13} {'GB/s':>7} {'of copy':>8}" if gpu else ""
    print(header)
    for w in workloads:
        num_examples, num_features, *_ = WORKLOADS[w]
        data_mb = num_examples * (num_features + 1) * 4 / 2**20
        if w in STREAMING:  # compared with the materialized Trainer at the same batch and width, if run
            reference = runs.get(("1m", "trainer"), runs[(w, "trainer")])
            book_step = statistics.median(r["loop_s"] / r["steps"] for r in reference)
        else:
            book_step = statistics.median(r["loop_s"] / r["steps"] for r in runs[(w, "book")])
        for p in paths_of(w):
            rs = runs[(w, p)]
            step = statistics.median(r["loop_s"] / r["steps"] for r in rs)
            rate = statistics.median(r["examples"] / r["loop_s"] for r in rs)
            rss = statistics.median(r["peak_rss_mb"] for r in rs)
            tiny = statistics.median(r["peak_rss_mb"] for r in runs.get(("book", p), rs))
            data_mb = data_mb if w not in STREAMING else float("nan")
            line = f"{w:>9} {p:>17} {rs[0]['steps']:>6} {step * 1e6:>9.1f} {rate:>11.0f} {step / book_step:>6.2f}"
            line += f" {statistics.median(r['total_s'] for r in rs):>8.2f} {rss:>13.0f}"
            line += f" {rss - tiny:>7.0f} ({(rss - tiny) / data_mb:.2f}x)"
            if gpu:
                gbps = 5 * num_examples * num_features * 4 / (step * rs[0]["steps"]) / 1e9  # 5 passes per epoch
                gpu_mb = statistics.median(r["peak_gpu_mb"] for r in rs)
                line += f" {gpu_mb:>13.0f} {gbps:>7.0f} {gbps * 1e9 / bandwidth:>8.0%}"
            print(line)
        if w in STREAMING:
            print(f"{'':>9} streamed: never stored; ratio to the 1m Trainer row (same batch, same features)")
        else:
            print(f"{'':>9} data: {data_mb:.0f} MiB (X and y in float32)")
    if gpu:
        print(f"\nmeasured device-to-device copy bandwidth: {bandwidth / 1e9:.0f} GB/s (read + write)")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{w}/{p}": r for (w, p), r in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
