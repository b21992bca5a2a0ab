"""Predictions of a trained checkpoint for the rows of a CSV or Parquet file, through Lightning's predict loop.

    predictions = predict("lightning_logs/version_0/checkpoints/last.ckpt", "new.csv")   # (n,) tensor

The command around it (flags, checks) is linreg/cli/predict.py, `linreg-predict`; the output file is
written by `linreg.data_files.write_with_column`.
"""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from linreg.checkpoint import read_checkpoint
from linreg.concise import LinearRegressionConcise
from linreg.data_files import read_columns, read_header
from linreg.errors import CheckpointError, DataError
from linreg.file_data import standardize
from linreg.model import LinearRegressionScratch
from linreg.sampler import MinibatchSampler

# --implementation: predicting needs the plain classes alone (the layers add nothing to forward)
IMPLEMENTATIONS = {"scratch": LinearRegressionScratch, "concise": LinearRegressionConcise}
# where the DataModule's state_dict sits in a checkpoint: linreg-train's class, or the plain one
FILE_DATA_KEYS = ("FileData", "FileRegressionDataModule", "StreamedFileData", "StreamedFileRegressionDataModule")


def model_and_features(checkpoint_path: str, checkpoint: dict, header: list[str], data: str):
    """(the plain module in its dtype, the feature columns, their standardization or None)."""
    state = checkpoint["state_dict"]
    dtype = next(iter(state.values())).dtype  # a float64 model (--precision 64-true) predicts in float64
    hparams = dict(checkpoint["hyper_parameters"])
    model = IMPLEMENTATIONS[hparams.pop("implementation", "scratch")](**hparams).to(dtype)
    model.load_state_dict(state)
    scaling = next((checkpoint[key] for key in FILE_DATA_KEYS if key in checkpoint), None)  # its standardization
    synthetic = "true_w" in checkpoint.get("datamodule_hyper_parameters", {})  # trained on N(0, 1) features
    if not scaling and not synthetic:
        raise CheckpointError(
            f"{checkpoint_path}: holds no standardization of its features and was not trained on synthetic data: "
            "there is no telling how to scale the columns"
        )
    features = scaling["feature_names"] if scaling else header
    if len(features) != model.hparams.num_inputs:
        raise DataError(f"{data}: {len(features)} feature columns, but the model takes {model.hparams.num_inputs}")
    return model, features, scaling


def predictor(accelerator: str, dtype: torch.dtype, callbacks=()) -> L.Trainer:
    precision = "64-true" if dtype == torch.float64 else "32-true"
    return L.Trainer(accelerator=accelerator, devices=1, precision=precision, logger=False,
                     enable_progress_bar=False, callbacks=list(callbacks))  # fmt: skip


def predict(
    checkpoint_path: str, data: str, accelerator: str = "auto", batch_size: int = 65536, checkpoint: dict | None = None
):
    """The predictions (n,) for the rows of `data`, a CSV or Parquet file, in the model's dtype. `checkpoint`:
    the file at `checkpoint_path`, if the caller has read it already."""
    if checkpoint is None:
        checkpoint = read_checkpoint(checkpoint_path)
    model, features, scaling = model_and_features(checkpoint_path, checkpoint, read_header(data), data)
    dtype = model.dtype
    X = read_columns(data, features)  # (n, num_inputs), float64; DataError on any bad cell
    if scaling:
        X = standardize(X, scaling["mean"], scaling["std"])
    loader = DataLoader(
        TensorDataset(X.to(dtype)), sampler=MinibatchSampler(len(X), batch_size, shuffle=False), batch_size=None
    )
    return torch.cat([p.reshape(-1).cpu() for p in predictor(accelerator, dtype).predict(model, loader)])
