"""linreg-benchmark runs end to end on the book's workload and prints its table (behaviour, not speed)."""

import re
import subprocess
import sys

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
    # the ratio of the times shown, each rounded to 0.1 µs, and the ratio itself rounded to 2 decimals
    low, high = (trainer_us - 0.05) / (book_us + 0.05), (trainer_us + 0.05) / (book_us - 0.05)
    assert low - 0.005 <= float(rows["trainer-no-logger"][4]) <= high + 0.005


def test_the_data_file_rows_time_a_file_against_loadtxt(tmp_path, monkeypatch, capsys):
    from linreg.cli import whole_process

    monkeypatch.setattr(whole_process, "FILE_ROWS", 3000)  # the real rows are 1,000,000: the same code, smaller
    monkeypatch.chdir(tmp_path)
    whole_process.files(repeats=1, kinds=("parquet",))  # the CSV row is the same code on the other file
    out = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # the files and the runs' logs were in a temporary folder
    assert re.search(r"numpy.loadtxt\s+[\d.]+\s+1.00\n", out)
    # seconds, x loadtxt, peak MiB above the 1000-row run, x the float64 table
    assert re.search(r"linreg-train --data big.parquet\s+-?[\d.]+\s+-?[\d.]+\s+-?\d+\s+-?[\d.]+\n", out), out
