"""Predict the rows of a CSV file with a trained checkpoint: `python scripts/predict.py --help`.

A thin entry point: the command is linreg/cli/predict.py, installed as the console script `linreg-predict`.
"""

from linreg.cli.predict import main

if __name__ == "__main__":
    main()
