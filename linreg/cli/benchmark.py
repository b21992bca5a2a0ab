"""Benchmark: the book's plain loop against the project's Trainer path, on the same workloads.

    linreg-benchmark                          # CPU workloads, 3 repeats, medians (or: python scripts/benchmark.py)
    linreg-benchmark --accelerator gpu        # adds the 10M x 256 workloads and bandwidth
    linreg-benchmark --workloads book 1m --repeats 5 --json results.json
    linreg-benchmark --whole-process          # whole processes: start-up, and the book's script vs the CLI

Paths, each run in a fresh process so that its peak memory is its own:
- `book`: the reference text's loop as written (`random.shuffle` of a Python list, `torch.tensor` of each
  batch's indices), printing the whole-set loss after each epoch;
- `book-tensor`: the same loop with a `torch.randperm` permutation sliced per batch;
- `trainer`: `linreg-train`'s own Trainer with its default settings (progress bar, TensorBoard,
  checkpoint, closed form, --steps-per-execution auto), built by `linreg.runner.build`;
- `trainer-k1`: the same at one SGD update per Lightning batch (`--steps-per-execution 1`): what steps
  per execution save;
- `trainer-bare`: the same Trainer and module without any callback or logger: Lightning's own floor;
- `trainer-no-bar`, `trainer-no-ckpt`, `trainer-no-report`, `trainer-no-logger` (on request): the
  default Trainer less one piece, so that the difference to `trainer` is what that piece costs.

Timed: the training loop, from the first SGD step to the end of the last epoch, with each epoch's
whole-set evaluation (the book prints it, so both sides do it). Not timed: process start, imports, making
the data, set-up; `total s` adds those (for the Trainer: the closed form and Lightning's set-up too).
Ratios divide by the `book` path on the same workload, in the same run: the machine is shared, so
absolute times drift but ratios hold. GPU bandwidth counts 5 passes over X per epoch: the gather reads X
and writes the batch (2), the forward pass reads the batch (1), the backward pass reads it again for
Xᵀ(y_hat - y) (1), the epoch-end evaluation reads X (1).
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from linreg.cli import Parser, program

# name: (num_examples, num_features, batch_size, num_epochs, gpu_only)
WORKLOADS = {
    "book": (1000, 2, 10, 3, False),
    "100k": (100_000, 2, 10, 1, False),
    "1m": (1_000_000, 100, 1000, 1, False),
    "10m-8k": (10_000_000, 256, 8192, 1, True),
    "10m-262k": (10_000_000, 256, 262_144, 1, True),
    "stream-1e9": (10**9, 100, 1000, 1, False),  # --streaming, 3000 steps: the Trainer path alone
}
STREAMING = {"stream-1e9": ["--streaming", "--max-steps", "3000"]}
PATHS = ("book", "book-tensor", "trainer", "trainer-k1", "trainer-bare")
# The CLI's Trainer less one piece, to see what each costs per step (--paths trainer-no-bar ...).
ABLATIONS = {
    "no-bar": {"ProgressBar"},
    "no-ckpt": {"ModelCheckpoint", "StepCheckpoint"},
    "no-report": {"BookReport"},
    "no-logger": set(),
}
ALL_PATHS = PATHS + tuple(f"trainer-{name}" for name in ABLATIONS)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mb() -> float:
    """The process's high-water resident memory (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def book_loop(workload: str, device: torch.device, tensor_order: bool) -> dict:
    """D2L §3.2's training code as written (or with a tensor permutation), on `device`."""
    from linreg.functions import linreg, sgd, squared_loss, synthetic_data

    num_examples, num_features, batch_size, num_epochs, _ = WORKLOADS[workload]
    start = time.perf_counter()
    true_w = torch.randn(num_features, generator=torch.Generator().manual_seed(0))
    features, labels = synthetic_data(true_w, 4.2, num_examples, generator=torch.Generator().manual_seed(1))
    features, labels = features.to(device), labels.to(device)

    def data_iter(batch_size, features, labels):
        num_examples = len(features)
        if tensor_order:
            indices = torch.randperm(num_examples, device=device)
            for i in range(0, num_examples, batch_size):
                batch_indices = indices[i : i + batch_size]
                yield features[batch_indices], labels[batch_indices]
            return
        indices = list(range(num_examples))
        random.shuffle(indices)
        for i in range(0, num_examples, batch_size):
            batch_indices = torch.tensor(indices[i : min(i + batch_size, num_examples)])
            yield features[batch_indices], labels[batch_indices]

    w = torch.normal(0, 0.01, size=(num_features, 1), requires_grad=True, device=device)
    b = torch.zeros(1, requires_grad=True, device=device)
    lr, net, loss = 0.03, linreg, squared_loss
    sync(device)
    loop_start = time.perf_counter()
    for epoch in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            l = loss(net(X, w, b), y)
            l.sum().backward()
            sgd([w, b], lr, batch_size)
        with torch.no_grad():
            train_l = loss(net(features, w, b), labels)
            print(f"epoch {epoch + 1}, loss {float(train_l.mean()):f}")
    sync(device)
    end = time.perf_counter()
    steps = num_epochs * -(-num_examples // batch_size)
    return {"loop_s": end - loop_start, "total_s": end - start, "steps": steps, "examples": steps * batch_size}


def trainer_path(workload: str, accelerator: str, logdir: str, without: str = "") -> dict:
    """linreg-train's Trainer as the CLI builds it, less the pieces named in `without`."""
    import torch._dynamo  # noqa: F401  Lightning's first self.log imports it (~0.2 s): an import, not a step

    from linreg.cli.train import build_parser
    from linreg.runner import build

    num_examples, num_features, batch_size, num_epochs, _ = WORKLOADS[workload]
    argv = ["--accelerator", accelerator, "--num-examples", str(num_examples), "--batch-size", str(batch_size)]
    argv += ["--max-epochs", str(num_epochs), "--logdir", logdir]
    if workload != "book":
        argv += ["--num-features", str(num_features)]
    argv += STREAMING.get(workload, [])
    times = {}

    def stamp(name: str, hook):  # the module's own hook, timed: no extra callback for Lightning to call
        def timed():
            hook()
            sync(model.device)
            times[name] = time.perf_counter()

        return timed

    if without == "k1":  # the default Trainer at one SGD update per Lightning batch
        argv, without = [*argv, "--steps-per-execution", "1"], ""
    start = time.perf_counter()
    datamodule, model, trainer = build(build_parser().parse_args(argv))
    model.on_train_start, model.on_train_end = stamp("start", model.on_train_start), stamp("end", model.on_train_end)
    if without:
        names = set().union(*ABLATIONS.values()) if without == "bare" else ABLATIONS[without]
        trainer.callbacks[:] = [c for c in trainer.callbacks if type(c).__name__ not in names]
        if without in ("bare", "no-logger"):
            trainer.loggers = []
    trainer.fit(model, datamodule=datamodule)
    end = time.perf_counter()
    return {
        "loop_s": times["end"] - times["start"],
        "total_s": end - start,
        "steps": trainer.global_step,
        "examples": min(trainer.global_step * batch_size, num_epochs * num_examples),
    }


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


def worker(args: argparse.Namespace) -> None:
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    with tempfile.TemporaryDirectory() as logdir:
        # Everything a run writes goes into the temporary folder, also what a Trainer without a logger puts
        # into the working directory (ModelCheckpoint's checkpoints/): the user's folder gets nothing.
        cwd = os.getcwd()
        os.chdir(logdir)
        try:
            if args.path.startswith("trainer"):
                result = trainer_path(args.workload, args.accelerator, logdir, args.path.removeprefix("trainer")[1:])
            else:
                result = book_loop(args.workload, device, tensor_order=args.path == "book-tensor")
        finally:
            os.chdir(cwd)
    result["peak_rss_mb"] = peak_rss_mb()
    if device.type == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    Path(args.result).write_text(json.dumps(result))


def run_worker(workload: str, path: str, accelerator: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, "-m", "linreg.cli.benchmark", "--worker", "--workload", workload, "--path", path]
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
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
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
