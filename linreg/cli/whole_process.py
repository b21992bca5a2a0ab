"""Whole-process benchmark: the reference text's script against the project's CLI, each as a fresh process.

    linreg-benchmark --whole-process          # start-up, both comparisons, your data files; 3 repeats, medians

Start-up: how long the commands take to answer `--help` and a bad flag (they check their input before
importing Lightning), beside a bare `python -c pass` and `import lightning`.

Everything a user waits for is timed: Python and torch starting, imports, making the data, the closed form,
training, the evaluations, the TensorBoard figure, the checkpoint. The CLI runs as a user types it (default
settings: progress bar, TensorBoard, `--closed-form auto`, `--steps-per-execution auto`), into a temporary
folder. The fixed costs (start-up, imports) are taken out by subtracting a tiny run of the same command:

- batch 10, 2 features: (time at 100,000 examples − time at 10) per SGD step, one epoch;
- 1M × 100, batch 1000: (time at 1,000,000 examples − time at 1,000) per example, one epoch.

Your data: a 1,000,000 × 10 CSV file as numpy writes it (`savetxt`, 6 decimals, ~105 MB) and the same
numbers as Parquet. `linreg-train --data FILE --target y --max-epochs 1 --batch-size 1000`, minus the same
on the first 1000 rows, against `numpy.loadtxt` reading the CSV; and its peak memory (the process's
maximum resident set) above the 1000-row run's, against the float64 table (1,000,000 × 11 × 8 bytes).

The book's side is its script as written (`python -m linreg.cli.whole_process --book N D BATCH`): the synthetic
data, `data_iter` over a shuffled Python list, the loop, the epoch's loss line. Ratios are CLI / book in
the same run: the machine is shared, absolute times drift.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from linreg.cli import Parser, program

# (label, big run, tiny run, num_features, batch_size, per, CLI flags beyond the defaults)
COMPARISONS = [
    ("batch 10, 2 features", 100_000, 10, 2, 10, "step", []),
    ("1M x 100, batch 1000", 1_000_000, 1000, 100, 1000, "example", []),
    # the same without the closed form: what solving it costs (--closed-form auto solves it at 100 features)
    ("  --closed-form never", 1_000_000, 1000, 100, 1000, "example", ["--closed-form", "never"]),
]


def book_script(num_examples: int, num_features: int, batch_size: int) -> None:
    """D2L §3.2's script, one epoch, with the book's own code (linreg.book, linreg.functions)."""
    import torch

    from linreg.book import train
    from linreg.functions import synthetic_data

    true_w, true_b = torch.randn(num_features), 4.2
    features, labels = synthetic_data(true_w, true_b, num_examples)
    w, b = train(features, labels, batch_size, num_epochs=1)
    print(f"error in estimating w: {true_w - w.reshape(true_w.shape)}")
    print(f"error in estimating b: {true_b - b}")


def timed(cmd: list[str], expect: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in expect:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - start


def commands(num_examples: int, num_features: int, batch_size: int, logdir: str, flags=()) -> dict[str, list[str]]:
    sizes = [str(num_examples), str(num_features), str(batch_size)]
    cli = [sys.executable, "-m", "linreg.cli.train", "--num-examples", sizes[0], "--num-features", sizes[1]]
    cli += ["--batch-size", sizes[2], "--max-epochs", "1", "--logdir", logdir, *flags]
    return {"book": [sys.executable, "-m", "linreg.cli.whole_process", "--book", *sizes], "cli": cli}


def startup(repeats: int) -> None:
    """Seconds until a command answers: what Lightning's import would cost every --help and typo."""
    python = [sys.executable, "-c"]
    cases = {
        "python -c pass": ([*python, "pass"], 0),
        "python -c 'import lightning'": ([*python, "import lightning"], 0),
        "linreg-train --help": ([sys.executable, "-m", "linreg.cli.train", "--help"], 0),
        "linreg-train --batch-size 0": ([sys.executable, "-m", "linreg.cli.train", "--batch-size", "0"], 2),
        "linreg-predict --help": ([sys.executable, "-m", "linreg.cli.predict", "--help"], 0),
    }
    print(f"{'start-up':>30} {'seconds':>8}   (medians of {repeats})")
    for label, (cmd, status) in cases.items():
        print(f"{label:>30} {statistics.median(timed(cmd, (status,)) for _ in range(repeats)):>8.2f}")
    print()


def measure(repeats: int) -> None:
    print(f"{'':>21} {'per':>8} {'book us':>9} {'CLI us':>9} {'ratio':>6}   (medians of {repeats})")
    for label, big, tiny, num_features, batch_size, per, flags in COMPARISONS:
        units = (big - tiny) / batch_size if per == "step" else big - tiny
        costs = {"book": [], "cli": []}
        with tempfile.TemporaryDirectory() as logdir:
            for _ in range(repeats):  # interleaved, so that a slow spell of the machine hits both sides
                for side in costs:
                    run_big = commands(big, num_features, batch_size, logdir, flags)[side]
                    run_tiny = commands(tiny, num_features, batch_size, logdir, flags)[side]
                    costs[side].append((timed(run_big) - timed(run_tiny)) / units)
        book, cli = statistics.median(costs["book"]), statistics.median(costs["cli"])
        print(f"{label:>21} {per:>8} {book * 1e6:>9.2f} {cli * 1e6:>9.2f} {cli / book:>6.2f}")


FILE_ROWS, FILE_FEATURES = 1_000_000, 10


def write_files(folder: str) -> dict[str, str]:
    """The benchmark's data files, big and 1000 rows, CSV and Parquet: name -> path."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    X = rng.standard_normal((FILE_ROWS, FILE_FEATURES))
    table = np.round(np.column_stack([X, X @ np.arange(1.0, FILE_FEATURES + 1) + 4.2]), 6)  # (rows, 11)
    names = [f"x{i}" for i in range(FILE_FEATURES)] + ["y"]
    paths = {}
    for size, rows in (("big", table), ("tiny", table[:1000])):
        paths[f"{size}.csv"] = f"{folder}/{size}.csv"
        np.savetxt(paths[f"{size}.csv"], rows, delimiter=",", header=",".join(names), comments="", fmt="%.6f")
        paths[f"{size}.parquet"] = f"{folder}/{size}.parquet"
        pq.write_table(pa.table(dict(zip(names, rows.T, strict=True))), paths[f"{size}.parquet"])
    return paths


def peak_run(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one child process: os.wait4 gives that child's own maximum."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a child that writes much cannot block on it
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        if status != 0:
            stderr.seek(0)
            sys.exit(f"{' '.join(cmd)} failed:\n{stderr.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def files(repeats: int, kinds: tuple[str, ...] = ("csv", "parquet")) -> None:
    import numpy as np

    table_mib = FILE_ROWS * (FILE_FEATURES + 1) * 8 / 2**20
    with tempfile.TemporaryDirectory() as folder:
        paths = write_files(folder)
        loadtxt = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.loadtxt(paths["big.csv"], delimiter=",", skiprows=1)
            loadtxt.append(time.perf_counter() - start)
        loadtxt_s = statistics.median(loadtxt)
        print(f"{'your data, 1M x 10':>30} {'seconds':>8} {'x loadtxt':>10} {'peak MiB':>9} {'x table':>8}")
        print(f"{'numpy.loadtxt':>30} {loadtxt_s:>8.2f} {1:>10.2f}")
        for kind in kinds:
            seconds, peaks = [], []
            for _ in range(repeats):
                runs = {}
                for size in ("big", "tiny"):
                    cli = [sys.executable, "-m", "linreg.cli.train", "--data", paths[f"{size}.{kind}"], "--target", "y"]
                    cli += ["--max-epochs", "1", "--batch-size", "1000", "--logdir", f"{folder}/logs"]
                    runs[size] = peak_run(cli)
                seconds.append(runs["big"][0] - runs["tiny"][0])
                peaks.append(runs["big"][1] - runs["tiny"][1])
            s, peak = statistics.median(seconds), statistics.median(peaks)
            label = f"linreg-train --data big.{kind}"
            print(f"{label:>30} {s:>8.2f} {s / loadtxt_s:>10.2f} {peak:>9.0f} {peak / table_mib:>8.2f}")
        print(f"{'':>30} (minus the 1000-row run; the float64 table is {table_mib:.0f} MiB)")
        print()
        readers(repeats, paths["big.csv"], folder)


def readers(repeats: int, long_csv: str, folder: str) -> None:
    """The CSV reader alone (linreg.data_files.read_columns, in this process) against numpy.loadtxt, on a
    long file and on a wide one: 10,000 columns x 50 rows (4.8 MB), where a per-column cost would show."""
    import numpy as np

    from linreg.data_files import read_columns, read_header

    rng = np.random.default_rng(0)
    wide = f"{folder}/wide.csv"
    header = ",".join(f"x{i}" for i in range(9999)) + ",y"
    np.savetxt(wide, rng.standard_normal((50, 10_000)), delimiter=",", header=header, comments="", fmt="%.6f")
    print(f"{'the CSV reader':>30} {'loadtxt s':>10} {'linreg s':>9} {'ratio':>6}")
    for label, path in (("1M x 10", long_csv), ("50 x 10,000 (wide)", wide)):
        times = {"loadtxt": [], "linreg": []}
        for _ in range(repeats):
            start = time.perf_counter()
            np.loadtxt(path, delimiter=",", skiprows=1)
            times["loadtxt"].append(time.perf_counter() - start)
            start = time.perf_counter()
            read_columns(path, read_header(path))
            times["linreg"].append(time.perf_counter() - start)
        loadtxt_s, linreg_s = statistics.median(times["loadtxt"]), statistics.median(times["linreg"])
        print(f"{label:>30} {loadtxt_s:>10.3f} {linreg_s:>9.3f} {linreg_s / loadtxt_s:>6.2f}")


def main() -> None:
    p = Parser(prog=program("whole_process.py"), description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--book", nargs=3, type=int, metavar=("N", "D", "BATCH"), help="run the book's script")
    args = p.parse_args()
    if args.book:
        return book_script(*args.book)
    startup(args.repeats)
    measure(args.repeats)
    print()
    files(args.repeats)


if __name__ == "__main__":
    main()
