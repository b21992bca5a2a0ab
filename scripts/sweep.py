"""One training run per value of one flag: the book's exercises as commands: `python scripts/sweep.py --help`.

A thin entry point: the command is linreg/cli/sweep.py, installed as the console script `linreg-sweep`.
"""

from linreg.cli.sweep import main

if __name__ == "__main__":
    main()
