"""Your own Parquet data, streamed: a LightningDataModule that never holds the data (linreg.file_stream).

    dm = StreamedFileRegressionDataModule("data/", target="y", val_fraction=0.2, batch_size=1000)

The same arguments as FileRegressionDataModule, and the same model: features standardized by the training
rows' mean and standard deviation (from one pass before training, cached: linreg.file_summary), the target
in its units, `to_data_units` and the checkpoint's standardization as there. What differs:
- the held-out rows are picked by a seeded hash of their global row number (about --val-fraction, or
  --num-val, of them), not by a permutation of all rows, which would have to be held;
- the evaluation after each epoch is the held-out rows alone (the training set is too large to evaluate
  every epoch); the closed form comes from the pass's exact sums, not from a training set in memory.
"""

import torch

from linreg.closed_form import ClosedForm, exactly
from linreg.data import RegressionDataModule
from linreg.data_files import data_fingerprint
from linreg.errors import DataError
from linreg.file_stream import WINDOW_ROWS, HeldOutRows, RowGroupSampler, RowGroupStream, stream_capacity
from linreg.file_summary import summarize
from linreg.fingerprint import changed
from linreg.parquet_parts import ParquetParts
from linreg.sampler import derive_seed

SPLIT_STREAM = -3  # the held-out rows' hash key: the seed's stream, as linreg.file_data's split


class StreamedFileRegressionDataModule(RegressionDataModule):
    """See the module docstring."""

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
        window_rows: int = WINDOW_ROWS,
        source: str | None = None,
    ) -> None:
        super().__init__()
        self.parts = ParquetParts.open(path)
        header = self.parts.names
        if target not in header:
            raise DataError(f"{path}: no target column '{target}' (the columns are: {', '.join(header)})")
        features = list(features) if features else [name for name in header if name != target]
        if len(set(features)) < len(features):
            twice = next(name for name in features if features.count(name) > 1)
            raise DataError(f"--features names '{twice}' twice")
        for name in features:
            if name not in header or name == target:
                raise DataError(f"{path}: '{name}' cannot be a feature (the columns are: {', '.join(header)})")
        if not 0 <= val_fraction < 1:
            raise DataError(f"--val-fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.feature_names, self.num_inputs = features, len(features)
        n = self.parts.num_rows
        fraction = num_val / n if num_val is not None else val_fraction
        if not 0 <= fraction < 1:
            raise DataError(f"{path}: {n} rows of data, too few to hold out {num_val} and train on the rest")
        self.key, self.threshold = derive_seed(seed, SPLIT_STREAM), round(fraction * 2**32)
        self.columns = [*features, target]
        self.summary = summarize(self.parts, self.columns, self.key, self.threshold, center)
        self.mean, self.std = self.summary.mean, self.summary.std
        self.num_train, self.num_val = int(self.summary.train_counts.sum()), int(self.summary.val_counts.sum())
        if self.num_train < 2:
            raise DataError(f"{path}: {self.num_train} training rows: at least 2 are needed to standardize")
        for name, std in zip(features, self.std.tolist(), strict=True):
            if not std > 0:
                raise DataError(
                    f"{path}: feature '{name}' is constant in the training rows; leave it out with --features"
                )
        # the data the user gave, for the checkpoint: a CSV file's own, where path is its Parquet conversion
        self.fingerprint = data_fingerprint(source, rows=self.parts.num_rows) if source else self.parts.fingerprint()
        self.train_stream = self.val_stream = None

    def setup(self, stage: str) -> None:
        if self.train_stream is None:
            capacity = stream_capacity(self.parts, self.hparams.window_rows)
            self.train_stream = RowGroupStream(self.parts, self.columns, self.mean, self.std, self.root_device(),
                                               self.data_dtype(), capacity)  # fmt: skip
            self.val_stream = RowGroupStream(self.parts, self.columns, self.mean, self.std, self.root_device(),
                                             self.data_dtype(), capacity=4)  # fmt: skip

    def train_sampler(self) -> RowGroupSampler:
        rank, world_size = self.ranks()
        hp = self.hparams
        return RowGroupSampler(
            self.num_train,
            hp.batch_size,
            shuffle=hp.shuffle,
            seed=hp.seed,
            device=self.root_device(),
            num_replicas=world_size,
            rank=rank,
            parts=self.parts,
            counts=self.summary.train_counts,
            key=self.key,
            threshold=self.threshold,
            window_rows=hp.window_rows,
            prefetch=self.train_stream.prefetch,
        )

    def train_dataset(self) -> RowGroupStream:
        return self.train_stream

    def val_dataloader(self) -> dict:
        if self.num_val == 0:
            return {}
        rows = HeldOutRows(self.val_stream, self.key, self.threshold, self.summary.val_counts)
        return {"val": self.in_order(rows, self.num_val)}

    def largest_label(self) -> float:
        """The largest |y| of the data, from the files' statistics (or the pass's)."""
        low, high = self.parts.column_range(self.hparams.target) or (float("-inf"), float("inf"))
        return max(abs(low), abs(high))

    def closed_form_solution(self, weight_decay: float = 0.0) -> ClosedForm:
        """The closed form of the training rows, from the pass's exact sums: no pass over the data."""
        return exactly(self.summary.gram, weight_decay, self.mean, self.std)

    def to_data_units(self, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = w.detach().reshape(-1).cpu().double()  # (num_inputs,)
        b = b.detach().reshape(-1).cpu().double()  # (1,)
        w_data = w / self.std
        return w_data, b - (w_data * self.mean).sum()

    def state_dict(self) -> dict:
        scaling = {"feature_names": self.feature_names, "target": self.hparams.target, "mean": self.mean,
                   "std": self.std, "fingerprint": self.fingerprint}  # fmt: skip
        return super().state_dict() | scaling

    def load_state_dict(self, state: dict) -> None:
        saved = state.get("fingerprint")
        difference = changed(saved, self.fingerprint) if saved is not None else "no fingerprint"
        if difference is not None or state.get("feature_names") != self.feature_names:
            raise DataError(
                f"{self.hparams.path} is not the data the checkpoint was trained on ({difference or 'other columns'}); "
                "resuming would train on other data: start a new run"
            )
