"""Benchmark the book's plain loop against the project's Trainer: `python scripts/benchmark.py --help`.

A thin entry point: the command is linreg/cli/benchmark.py, installed as the console script `linreg-benchmark`.
"""

from linreg.cli.benchmark import main

if __name__ == "__main__":
    main()
