"""Predict with a trained model: the rows of a CSV or Parquet file, plus a `prediction` column.

    linreg-predict --checkpoint lightning_logs/version_0/checkpoints/last.ckpt --data new.csv
    linreg-predict --checkpoint CKPT --data new.csv --output predictions.csv --accelerator gpu
    linreg-predict --checkpoint CKPT --data new.parquet --output predictions.parquet
    python scripts/predict.py ...                      # the same

The output is CSV (to stdout without --output), or Parquet when --output ends in .parquet. Parquet input
(a file, a folder of parts or a glob) is read, predicted and written a row group at a time, in row order:
memory stays one row group whatever the data's size (linreg/prediction_stream.py). The
checkpoint carries the model and, for a model trained on a file, the feature names and the
standardization of its training split: new rows are standardized the same way. For a model trained on
synthetic data every column of the file is a feature, in order; a checkpoint that says neither is refused.
Predictions are computed in the model's dtype (float64 for a --precision 64-true run) and written with
every digit that dtype holds. Predictions go through Lightning's predict
loop (`predict_step`) on any accelerator. Bad input ends with one line on stderr and exit status 2; an
existing --output file is never overwritten.
"""

import os
from pathlib import Path

from linreg.cli import (
    USER_ERRORS,
    Parser,
    data_file,
    fail,
    hardware,
    program,
    quieted,
    readable_file,
    stopped_in_one_line,
)
from linreg.errors import CheckpointError, DataError

PROG = "predict.py"


def writable_destination(path: str) -> None:
    """--output: a new file in a folder that exists and can be written, known before anything is computed."""
    if Path(path).exists():
        raise DataError(f"--output {path} exists; not overwriting it")
    folder = Path(path).parent
    if not folder.is_dir():
        raise DataError(f"--output {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"--output {path}: the folder {folder} cannot be written (permission denied)")


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog=program(PROG), description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by linreg-train")
    p.add_argument("--data", required=True, metavar="PATH", help="CSV (header row), or Parquet: file, folder, glob")
    p.add_argument("--output", metavar="OUT", help="write here, not to stdout: .parquet or CSV (never overwritten)")
    p.add_argument("--accelerator", type=hardware.accelerator, default="auto", help="cpu, gpu, ... or auto (auto)")
    args = p.parse_args(argv)
    with stopped_in_one_line(program(PROG), stopped="stopped the predictions"):
        predict_rows(args)


def predict_rows(args) -> None:
    """The predictions of the checkpoint for the rows of --data, written to --output or stdout."""
    try:
        # what the flags and files alone show, before Lightning is imported
        if args.output:
            writable_destination(args.output)
        readable_file("--checkpoint", args.checkpoint, CheckpointError)
        from linreg.checkpoint import read_checkpoint  # torch only: a file that is no checkpoint is told now

        checkpoint = read_checkpoint(args.checkpoint)
        data_file("--data", args.data, DataError)
        hardware.accelerator_available("--accelerator", args.accelerator, DataError)
        from linreg.data_files import is_parquet
        from linreg.parquet_parts import is_parts

        if is_parts(args.data) or is_parquet(args.data):  # a row group at a time, written as it goes
            with quieted(program(PROG)):
                run_predict(args, checkpoint, streamed=True)
            return
        with quieted(program(PROG)):
            predictions = run_predict(args, checkpoint)
        from linreg.data_files import write_with_column

        write_with_column(args.data, "prediction", predictions, args.output)
    except USER_ERRORS as e:
        fail(program(PROG), e)


def run_predict(args, checkpoint: dict, streamed: bool = False):
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from linreg.prediction import predict  # Lightning: only once the input is known to be good
    from linreg.prediction_stream import predict_to_file

    try:
        if streamed:
            return predict_to_file(args.checkpoint, checkpoint, args.data, args.output, args.accelerator)
        return predict(args.checkpoint, args.data, args.accelerator, checkpoint=checkpoint)
    except MisconfigurationException as e:
        raise DataError(str(e).strip().splitlines()[0]) from None


if __name__ == "__main__":
    main()
