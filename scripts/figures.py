"""Regenerate the README's figures from fresh runs: `python scripts/figures.py --help`.

A thin entry point: the command is linreg/cli/figures.py, installed as the console script `linreg-figures`.
"""

from linreg.cli.figures import main

if __name__ == "__main__":
    main()
