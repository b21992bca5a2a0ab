"""The benchmark's timed runs, one per process (linreg-benchmark starts them; see linreg/cli/benchmark.py).

    python -m linreg.cli.benchmark_paths --workload 1m --path trainer --result out.json

Paths, each run in a fresh process so that its peak memory is its own:
- `book`: the reference text's loop as written (`linreg.book`: `random.shuffle` of a Python list,
  `torch.tensor` of each batch's indices), printing the whole-set loss after each epoch;
- `book-tensor`: the same loop with a `torch.randperm` permutation sliced per batch;
- `trainer`: `linreg-train`'s own Trainer with its default settings at a terminal (progress bar,
  TensorBoard, checkpoint, closed form, --steps-per-execution auto), built by `linreg.runner.build`;
- `trainer-k1`: the same at one SGD update per Lightning batch (`--steps-per-execution 1`): what steps
  per execution save;
- `trainer-bare`: the same Trainer and module without any callback or logger: Lightning's own floor;
- `trainer-no-bar`, `trainer-no-ckpt`, `trainer-no-report`, `trainer-no-logger` (on request): the
  default Trainer less one piece, so that the difference to `trainer` is what that piece costs.

Timed: the training loop, from the first SGD step to the end of the last epoch, with each epoch's
whole-set evaluation (the book prints it, so both sides do it). Not timed: process start, imports, making
the data, set-up; `total s` adds those (for the Trainer: the closed form and Lightning's set-up too). The
closed form is solved before the loop here, also where the CLI solves it beside training.
GPU bandwidth counts 5 passes over X per epoch: the gather reads X and writes the batch (2), the forward
pass reads the batch (1), the backward pass reads it again for Xᵀ(y_hat - y) (1), the epoch-end evaluation
reads X (1).
"""

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import torch

from linreg.cli import Parser, quieted

PROG = "python -m linreg.cli.benchmark_paths"

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
    from linreg.book import train
    from linreg.functions import synthetic_data

    num_examples, num_features, batch_size, num_epochs, _ = WORKLOADS[workload]
    start = time.perf_counter()
    true_w = torch.randn(num_features, generator=torch.Generator().manual_seed(0))
    features, labels = synthetic_data(true_w, 4.2, num_examples, generator=torch.Generator().manual_seed(1))
    features, labels = features.to(device), labels.to(device)
    sync(device)
    loop_start = time.perf_counter()
    train(features, labels, batch_size, num_epochs, tensor_order=tensor_order)
    sync(device)
    end = time.perf_counter()
    steps = num_epochs * -(-num_examples // batch_size)
    return {"loop_s": end - loop_start, "total_s": end - start, "steps": steps, "examples": steps * batch_size}


def trainer_path(workload: str, accelerator: str, logdir: str, without: str = "") -> dict:
    """linreg-train's Trainer as the CLI builds it, less the pieces named in `without`."""
    import torch._dynamo  # noqa: F401  Lightning's first self.log imports it (~0.2 s): an import, not a step

    import linreg.book_report
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

    # The loop is timed alone: a long closed form is solved before it, not beside it as the CLI does (the
    # whole-process benchmark times the two together; here the solve's thread would slow the loop it shares
    # the cores with, ~1.06 -> ~1.4 ms a step at 1M x 100 while it runs).
    linreg.book_report.BACKGROUND_US = math.inf
    if without == "k1":  # the default Trainer at one SGD update per Lightning batch
        argv, without = [*argv, "--steps-per-execution", "1"], ""
    start = time.perf_counter()
    datamodule, model, trainer = build(build_parser().parse_args(argv), progress_bar=True)  # as at a terminal
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


def worker(args: argparse.Namespace) -> None:
    """One (workload, path) run; its measurements, peak memory included, as JSON into `args.result`."""
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


def main() -> None:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", required=True, choices=list(WORKLOADS))
    p.add_argument("--path", required=True, choices=ALL_PATHS)
    p.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--result", required=True, help="the JSON file to write")
    with quieted(PROG):  # as linreg-train's main() runs: the same logging and warnings
        worker(p.parse_args())


if __name__ == "__main__":
    main()
