"""Predict with a trained model: the rows of a CSV file, plus a `prediction` column.

    python scripts/predict.py --checkpoint lightning_logs/version_0/checkpoints/last.ckpt --data new.csv
    python scripts/predict.py --checkpoint CKPT --data new.csv --output predictions.csv --accelerator gpu

The checkpoint carries the model and, for a model trained on a CSV, the feature names and the
standardization of its training split: new rows are standardized the same way. For a model trained on
synthetic data every column of the CSV is a feature, in order; a checkpoint that says neither is refused.
Predictions are computed in the model's dtype (float64 for a --precision 64-true run) and written with
every digit that dtype holds. Predictions go through Lightning's predict
loop (`predict_step`) on any accelerator. Bad input ends with one line on stderr and exit status 2; an
existing --output file is never overwritten.
"""

import argparse
import csv
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from linreg.checkpoint import CheckpointError, read_checkpoint
from linreg.csv_data import DataError, open_csv, read_columns, read_header, standardize
from linreg.model import LinearRegressionScratch
from linreg.sampler import MinibatchSampler


def predict(checkpoint_path: str, data: str, accelerator: str = "auto", batch_size: int = 65536):
    """(header, rows as read, predictions (n,)) for the CSV file `data`, in the model's dtype."""
    checkpoint = read_checkpoint(checkpoint_path)
    dtype = checkpoint["state_dict"]["w"].dtype  # a float64 model (--precision 64-true) predicts in float64
    model = LinearRegressionScratch(**checkpoint["hyper_parameters"]).to(dtype)
    model.load_state_dict(checkpoint["state_dict"])
    scaling = checkpoint.get("CSVRegressionDataModule")  # saved by the DataModule's state_dict
    synthetic = "true_w" in checkpoint.get("datamodule_hyper_parameters", {})  # trained on N(0, 1) features
    if not scaling and not synthetic:
        raise CheckpointError(
            f"{checkpoint_path}: holds no standardization of its features and was not trained on synthetic data: "
            "there is no telling how to scale the columns"
        )
    header = read_header(data)
    features = scaling["feature_names"] if scaling else header
    if len(features) != model.hparams.num_inputs:
        raise DataError(f"{data}: {len(features)} feature columns, but the model takes {model.hparams.num_inputs}")
    X = read_columns(data, features)  # (n, num_inputs), float64; DataError on any bad cell
    if scaling:
        X = standardize(X, scaling["mean"], scaling["std"])
    loader = DataLoader(
        TensorDataset(X.to(dtype)), sampler=MinibatchSampler(len(X), batch_size, shuffle=False), batch_size=None
    )
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    precision = "64-true" if dtype == torch.float64 else "32-true"
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, precision=precision, logger=False, enable_progress_bar=False
    )
    predictions = torch.cat([p.reshape(-1).cpu() for p in trainer.predict(model, loader)])
    with open_csv(data) as f:
        rows = [row for row in list(csv.reader(f))[1:] if row and any(cell.strip() for cell in row)]
    return header, rows, predictions


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by scripts/train.py")
    p.add_argument("--data", required=True, metavar="FILE.csv", help="the rows to predict, with a header row")
    p.add_argument("--output", metavar="OUT.csv", help="write here instead of to stdout (never overwritten)")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        if args.output and Path(args.output).exists():
            raise DataError(f"{args.output} exists; not overwriting it")
        if args.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise DataError(f"--accelerator {args.accelerator}: no CUDA GPU is available on this machine")
        header, rows, predictions = predict(args.checkpoint, args.data, args.accelerator)
    except (DataError, CheckpointError, MisconfigurationException) as e:
        print(f"predict.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    lines = [[*header, "prediction"]]
    # str of a numpy scalar: the shortest text that reads back as the same float32 or float64, all digits kept
    lines += [[*row, str(value)] for row, value in zip(rows, predictions.numpy(), strict=True)]
    if args.output:
        with Path(args.output).open("x", newline="") as f:  # "x": fails rather than overwrite
            csv.writer(f).writerows(lines)
    else:
        csv.writer(sys.stdout).writerows(lines)


if __name__ == "__main__":
    main()
