"""Train the book's linear regression (D2L §3.2) and report like the book: `python scripts/train.py --help`.

A thin entry point: the command is linreg/cli/train.py, installed as the console script `linreg-train`.
"""

from linreg.cli.train import main

if __name__ == "__main__":
    main()
