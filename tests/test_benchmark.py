"""linreg-benchmark runs end to end on the book's workload and prints its table (behaviour, not speed)."""

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_benchmark_prints_a_row_per_path_with_ratios_to_the_books_loop(tmp_path):
    # run from an empty folder: no path may write into the working directory (the Trainer without a logger
    # once left checkpoints/last-v*.ckpt there)
    paths = ["trainer-no-logger"]  # the Trainer path whose checkpoints have no logger folder to go to
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "benchmark.py"),
            "--workloads",
            "book",
            "--repeats",
            "1",
            "--paths",
            *paths,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert list(tmp_path.iterdir()) == []
    rows = {m[0]: m for m in re.findall(r"^\s+book\s+(\S+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)", out, re.M)}
    assert rows.keys() == {"book", *paths}  # the book's loop always runs: the ratios need it
    assert rows["book"][1] == rows["trainer-no-logger"][1] == "300"  # 3 epochs of 100 steps on both paths
    book_us, trainer_us = float(rows["book"][2]), float(rows["trainer-no-logger"][2])
    assert float(rows["book"][4]) == 1.0
    assert float(rows["trainer-no-logger"][4]) == pytest.approx(trainer_us / book_us, abs=0.006)  # to 2 decimals
