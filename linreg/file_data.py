"""Your own data: a CSV or Parquet file as a LightningDataModule, its features standardized on the training split.

    dm = FileRegressionDataModule("houses.csv", target="price", features=["area", "age"], val_fraction=0.2)
    dm = FileRegressionDataModule("houses.parquet", target="price")

- Read by `linreg.data_files` (pyarrow): a CSV file needs a header row of distinct names (a UTF-8 byte-order
  mark is fine), a Parquet file numeric columns; every cell must be a finite number. `features` defaults
  to every column but the target, and may not include it.
- The held-out split, `num_val` rows or `val_fraction` of them, is drawn with the seed.
- Features are standardized with the training split's mean and standard deviation: SGD on raw units
  (areas in the hundreds beside ages in the tens) crawls along one axis and diverges along another.
  The target keeps its units: with standardized features the book's SGD converges at the same rate
  whatever the target's scale, and losses and predictions stay in the units the user knows.
- `to_data_units` turns the learned (w, b) back into coefficients of the raw features; the
  standardization travels in the checkpoint (`state_dict`), so `scripts/predict.py` can apply it.

Bad input raises `DataError` with one line naming the file, and the line and column where it applies.
"""

import math
from collections.abc import Callable

import torch

from linreg.data import RegressionDataModule
from linreg.data_files import data_fingerprint, read_columns, read_header
from linreg.errors import DataError
from linreg.fingerprint import changed
from linreg.sampler import derive_seed

SPLIT_STREAM = -3  # the held-out split's RNG stream of the seed (see linreg.data)
STANDARDIZE_ROWS = 8192  # rows standardized at a time: float64 blocks the allocator reuses, in cache (performance.md)


def standardize(X: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(X - mean) / std per feature: X (n, d), mean and std (d,)."""
    return (X - mean) / std


def checked_columns(path, header: list[str], target: str, features: list[str] | None, val_fraction: float) -> list[str]:
    """The feature columns (default: all but the target), DataError naming what is wrong with the choice."""
    if target not in header:
        raise DataError(f"{path}: no target column '{target}' (the columns are: {', '.join(header)})")
    features = list(features) if features else [name for name in header if name != target]
    if len(set(features)) < len(features):
        twice = next(name for name in features if features.count(name) > 1)
        raise DataError(f"--features names '{twice}' twice")
    if target in features:
        raise DataError(f"{path}: '{target}' is the target; it cannot be one of the --features too")
    if not features:
        raise DataError(f"{path}: no feature columns besides the target '{target}'")
    for name in features:
        if name not in header:
            raise DataError(f"{path}: no feature column '{name}' (the columns are: {', '.join(header)})")
    if not 0 <= val_fraction < 1:
        raise DataError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    return features


def checked_scaling(path, features: list[str], mean, std, center: bool, largest: Callable[[int], float]) -> None:
    """DataError for a feature that cannot be standardized: its variance overflows (largest(j): its largest
    |value|, for the line), or it is constant (zero throughout, without centering)."""
    for j, (name, m, s) in enumerate(zip(features, mean.tolist(), std.tolist(), strict=True)):
        if not (math.isfinite(m) and math.isfinite(s)):
            raise DataError(
                f"{path}: feature '{name}' reaches {largest(j):.3g}, too large to standardize in float64 (its "
                "variance overflows); rescale the column"
            )
        if not s > 0:
            raise DataError(
                f"{path}: feature '{name}' is {'constant' if center else 'zero throughout'} in the training split, "
                "so it cannot be standardized (it would divide by zero); leave it out with --features"
            )


class StandardizedFile:
    """What a DataModule of a file's standardized features (in memory, or streamed) reports, saves and checks
    on resume: it has `feature_names`, `mean`, `std`, `fingerprint` and hparams `path` and `target`."""

    def standardization(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean, self.std

    def to_data_units(self, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # y = w·(x - mean)/std + b = (w/std)·x + (b - Σ w·mean/std)
        w = w.detach().reshape(-1).cpu().double()  # (num_inputs,)
        b = b.detach().reshape(-1).cpu().double()  # (1,)
        w_data = w / self.std
        return w_data, b - (w_data * self.mean).sum()

    def state_dict(self) -> dict:
        """Saved in every checkpoint: what predict.py needs to standardize new rows the same way."""
        scaling = {
            "feature_names": self.feature_names,
            "target": self.hparams.target,
            "mean": self.mean,
            "std": self.std,
            "fingerprint": self.fingerprint,
        }
        return super().state_dict() | scaling

    def check_resume(self, state: dict) -> None:
        """DataError unless the checkpoint's run (its `state_dict`) predicted the same target from the same
        features as this one."""
        if "feature_names" not in state:
            raise DataError("the checkpoint was not trained on a data file; resume it without --data")
        saved, given = (state["feature_names"], state["target"]), (self.feature_names, self.hparams.target)
        if saved != given:
            raise DataError(
                f"the checkpoint was trained to predict '{saved[1]}' from {', '.join(saved[0])}; "
                f"this run asks for '{given[1]}' from {', '.join(given[0])}"
            )
        saved = state.get("fingerprint")
        difference = changed(saved, self.fingerprint) if saved is not None else None
        if difference is not None:
            raise DataError(
                f"{self.hparams.path} is not the file the checkpoint was trained on ({saved['path']}: {difference}); "
                "resuming would train on other data, in another split: start a new run"
            )


class FileRegressionDataModule(StandardizedFile, RegressionDataModule):
    """y = the `target` column, X = the `features` columns (standardized); see the module docstring."""

    def __init__(
        self,
        path: str,
        target: str,
        features: list[str] | None = None,
        num_val: int | None = None,
        val_fraction: float = 0.2,
        batch_size: int = 10,
        seed: int = 0,
        eval_batch_size: int = 65536,
        shuffle: bool = True,
        center: bool = True,
    ) -> None:
        super().__init__()
        features = checked_columns(path, read_header(path), target, features, val_fraction)
        self.save_hyperparameters()
        self.feature_names = features
        self.num_inputs = len(features)
        # Read and checked here, so that bad data is reported before any training starts; setup() makes
        # the training tensors from it. The one float64 copy of the data kept, as read: training rows first,
        # so that each split is a slice of it (a view, not a gathered copy), each row put in its place as it
        # is read (`split`). The closed form is solved on these numbers; training on their standardized copy,
        # made in the training dtype (make_data).
        self.table = read_columns(path, [*features, target], order=self.split)  # (rows, num_inputs + 1)
        # in every checkpoint: a resume on changed data is refused
        self.fingerprint = data_fingerprint(path, rows=len(self.table))
        X = self.table[: self.num_train, :-1]  # (num_train, num_inputs)
        if center:  # of the training split only
            self.mean, self.std = X.mean(0), X.std(0)
        else:  # a model without a bias: scaled, not centered (centering would move an intercept into the model)
            self.mean, self.std = torch.zeros(X.shape[1], dtype=X.dtype), X.square().mean(0).sqrt()
        checked_scaling(path, features, self.mean, self.std, center, lambda j: float(X[:, j].abs().max()))

    def split(self, n: int) -> torch.Tensor:
        """The split of n rows: the held-out rows a seeded permutation's first num_val, the training rows
        the rest (row numbers in the file, from 0). Returns the order the table stores them in: (n,)."""
        num_val = self.hparams.num_val if self.hparams.num_val is not None else int(n * self.hparams.val_fraction)
        path = self.hparams.path
        if num_val >= n:
            raise DataError(f"{path}: {n} rows of data, too few to hold out {num_val} and train on the rest")
        seed = derive_seed(self.hparams.seed, SPLIT_STREAM)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.train_rows, self.val_rows = order[num_val:], order[:num_val]
        self.num_train = n - num_val
        if self.num_train < 2:
            raise DataError(
                f"{path}: {self.num_train} training row after holding out {num_val}: "
                "at least 2 are needed to standardize the features"
            )
        return torch.cat([self.train_rows, self.val_rows])

    def largest_label(self) -> float:
        """The largest |y| trained on."""
        return float(self.table[: self.num_train, -1].abs().max())

    def make_data(self, dtype: torch.dtype):
        # the features standardized, (X - mean) / std, held-out rows with the training split's statistics too,
        # a block at a time: in float64, rounded once to dtype, without a second float64 copy of the data
        features = torch.empty(len(self.table), self.num_inputs, dtype=dtype)  # (rows, num_inputs)
        for start in range(0, len(features), STANDARDIZE_ROWS):
            block = self.table[start : start + STANDARDIZE_ROWS, :-1]
            features[start : start + STANDARDIZE_ROWS] = standardize(block, self.mean, self.std)
        labels = self.table[:, -1:].to(dtype)  # a view at --precision 64-true
        n = self.num_train
        return features[:n], labels[:n], features[n:], labels[n:]

    def closed_form_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split in float64 as read, whatever the training dtype: the closed form is solved on
        the user's numbers, not on their float32 rounding nor their standardization's (views, no copy)."""
        train = self.table[: self.num_train]  # (num_train, num_inputs + 1), float64
        return train[:, :-1], train[:, -1:]

    def load_state_dict(self, state: dict) -> None:
        """Resuming: train on the data exactly as the checkpoint's run did, standardized with its statistics.

        Lightning calls this after `setup`, which standardized with this split's statistics (another seed or
        --val-fraction draws another split): the tensors are made again with the saved ones.
        """
        self.check_resume(state)
        mean, std = state["mean"].double(), state["std"].double()
        if not (torch.equal(mean, self.mean) and torch.equal(std, self.std)):  # another split's: standardize again
            self.mean, self.std = mean, std
            if self.train_set is not None:
                self.train_set = self.val_set = None
                self.setup("fit")
