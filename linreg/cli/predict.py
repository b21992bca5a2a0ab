"""Predict with a trained model: the rows of a CSV file, plus a `prediction` column.

    linreg-predict --checkpoint lightning_logs/version_0/checkpoints/last.ckpt --data new.csv
    linreg-predict --checkpoint CKPT --data new.csv --output predictions.csv --accelerator gpu
    python scripts/predict.py ...                      # the same

The checkpoint carries the model and, for a model trained on a CSV, the feature names and the
standardization of its training split: new rows are standardized the same way. For a model trained on
synthetic data every column of the CSV is a feature, in order; a checkpoint that says neither is refused.
Predictions are computed in the model's dtype (float64 for a --precision 64-true run) and written with
every digit that dtype holds. Predictions go through Lightning's predict
loop (`predict_step`) on any accelerator. Bad input ends with one line on stderr and exit status 2; an
existing --output file is never overwritten.
"""

import csv
import sys
from pathlib import Path

from linreg.cli import USER_ERRORS, Parser, fail, gpu_available, program, quiet, readable_file, text_file
from linreg.errors import CheckpointError, DataError

PROG = "predict.py"


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog=program(PROG), description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by linreg-train")
    p.add_argument("--data", required=True, metavar="FILE.csv", help="the rows to predict, with a header row")
    p.add_argument("--output", metavar="OUT.csv", help="write here instead of to stdout (never overwritten)")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        # what the flags and files alone show, before Lightning is imported
        if args.output and Path(args.output).exists():
            raise DataError(f"{args.output} exists; not overwriting it")
        readable_file("--checkpoint", args.checkpoint, CheckpointError)
        from linreg.checkpoint import read_checkpoint  # torch only: a file that is no checkpoint is told now

        checkpoint = read_checkpoint(args.checkpoint)
        text_file("--data", args.data, DataError)
        gpu_available(args.accelerator, DataError)
        header, rows, predictions = run_predict(args, checkpoint)
    except USER_ERRORS as e:
        fail(program(PROG), e)
    lines = [[*header, "prediction"]]
    # str of a numpy scalar: the shortest text that reads back as the same float32 or float64, all digits kept
    lines += [[*row, str(value)] for row, value in zip(rows, predictions.numpy(), strict=True)]
    if args.output:
        with Path(args.output).open("x", newline="") as f:  # "x": fails rather than overwrite
            csv.writer(f).writerows(lines)
    else:
        csv.writer(sys.stdout).writerows(lines)


def run_predict(args, checkpoint: dict):
    quiet(program(PROG))
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from linreg.prediction import predict  # Lightning: only once the input is known to be good

    try:
        return predict(args.checkpoint, args.data, args.accelerator, checkpoint=checkpoint)
    except MisconfigurationException as e:
        raise DataError(str(e).strip().splitlines()[0]) from None


if __name__ == "__main__":
    main()
