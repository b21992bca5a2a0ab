"""Your own Parquet data, streamed: a LightningDataModule that never holds the data (linreg.file_stream).

    dm = StreamedFileRegressionDataModule("data/", target="y", val_fraction=0.2, batch_size=1000)

The same arguments as FileRegressionDataModule, and the same model: features standardized by the training
rows' mean and standard deviation (from one pass before training, cached: linreg.file_summary), the target
in its units, `to_data_units` and the checkpoint's standardization as there. What differs:
- the held-out rows are picked by a seeded hash of their global row number (about --val-fraction, or
  --num-val, of them), not by a permutation of all rows, which would have to be held;
- the evaluation after each epoch is the held-out rows alone (the training set is too large to evaluate
  every epoch), read from the pass's copy of them where it is whole; the closed form comes from the
  pass's exact sums, not from a training set in memory;
- each epoch reads the rows from the pass's row cache (linreg.row_cache) where it is whole, standardized
  for the run's dtype once, before training (`prepare_data`, linreg.training_rows), else from the files:
  the same bits; row_cache=False (--no-row-cache) never writes nor reads one.
"""

import contextlib

from linreg.closed_form import ClosedForm, exactly
from linreg.data import RegressionDataModule
from linreg.data_files import data_fingerprint
from linreg.errors import DataError
from linreg.file_data import StandardizedFile, checked_columns, checked_scaling
from linreg.file_stream import WINDOW_ROWS, HeldOutRows, InOrderRows, RowGroupSampler
from linreg.file_summary import summarize
from linreg.parquet_files import checked_parquet_columns
from linreg.parquet_parts import ParquetParts
from linreg.row_cache import RowCache
from linreg.row_group_pool import RowGroupStream, columns_standardization, stream_capacity
from linreg.sampler import derive_seed
from linreg.training_rows import TrainingRows, training_rows, training_rows_path, write_standardized_parts

SPLIT_STREAM = -3  # the held-out rows' hash key: the seed's stream, as linreg.file_data's split


class StreamedFileRegressionDataModule(StandardizedFile, RegressionDataModule):
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
        row_cache: bool = True,
    ) -> None:
        super().__init__()
        self.parts = ParquetParts.open(path)
        features = checked_columns(path, self.parts.names, target, features, val_fraction)
        checked_parquet_columns(path, self.parts, [*features, target])
        self.save_hyperparameters()
        self.feature_names, self.num_inputs = features, len(features)
        n = self.parts.num_rows
        fraction = num_val / n if num_val is not None else val_fraction
        if not 0 <= fraction < 1:
            raise DataError(f"{path}: {n} rows of data, too few to hold out {num_val} and train on the rest")
        self.key, self.threshold = derive_seed(seed, SPLIT_STREAM), round(fraction * 2**32)
        self.columns = [*features, target]
        read = self.parts.fingerprint()  # of the parts as read now: the pass's cache is keyed by it
        self.summary = summarize(self.parts, self.columns, self.key, self.threshold, center, read, row_cache)
        self.mean, self.std = self.summary.mean, self.summary.std
        self.num_train, self.num_val = int(self.summary.train_counts.sum()), int(self.summary.val_counts.sum())
        if self.num_train < 2:
            raise DataError(f"{path}: {self.num_train} training rows: at least 2 are needed to standardize")
        checked_scaling(path, features, self.mean, self.std, center, lambda j: self.largest(features[j]))
        # the data the user gave, for the checkpoint: a CSV file's own, where path is its Parquet conversion
        self.fingerprint = data_fingerprint(source, rows=self.parts.num_rows) if source else read
        self.train_stream = self.val_stream = None

    def prepare_data(self) -> None:
        """Once per node, before any process sets up: the row cache, and the held-out rows' copy,
        standardized for this run's dtype (linreg.training_rows)."""
        self.stream_rows(write=True)
        self.heldout_rows(self.heldout_copy(), write=True)

    def stream_rows(self, write: bool = False) -> TrainingRows | RowCache | None:
        """What the streams read: the row cache standardized for this run's dtype, else the row cache, else
        None (the files); linreg.training_rows."""
        center, scale = columns_standardization(self.mean, self.std)
        n, width = self.parts.num_rows, len(self.columns)
        return training_rows(self.summary.rows, n, width, center, scale, self.data_dtype(), write)

    def setup(self, stage: str) -> None:
        if self.train_stream is None:
            capacity = stream_capacity(self.parts, self.hparams.window_rows)
            rows = self.stream_rows()
            self.train_stream = RowGroupStream(self.parts, self.columns, self.mean, self.std, self.root_device(),
                                               self.data_dtype(), capacity, rows)  # fmt: skip
            self.train_stream.allocate()  # its pages touched here, as the in-memory data's are: not in an epoch
            copy = self.heldout_copy()  # read from its standardized rows, or decoded; else the data's groups
            val_rows = self.heldout_rows(copy) if copy else rows
            self.val_stream = RowGroupStream(copy or self.parts, self.columns, self.mean, self.std, self.root_device(),
                                             self.data_dtype(), 4, val_rows)  # fmt: skip

    def heldout_rows(self, copy: ParquetParts | None, write: bool = False) -> TrainingRows | None:
        """The held-out copy's rows standardized for this run's dtype, where whole (written first where
        `write`); None: the copy's Parquet files are decoded after each epoch (and with --no-row-cache)."""
        if copy is None or not self.hparams.row_cache:
            return None
        center, scale = columns_standardization(self.mean, self.std)
        dtype, d = self.data_dtype(), len(self.columns) - 1
        path = training_rows_path(self.summary.heldout, center, scale, dtype)
        if (ready := TrainingRows.open(path, copy.num_rows, d, dtype)) is not None or not write:
            return ready
        return write_standardized_parts(copy, self.columns, path, center, scale, dtype)

    def heldout_copy(self) -> ParquetParts | None:
        """The pass's copy of the held-out rows (linreg.file_summary), if it is whole: their rows alone,
        about --val-fraction of the data, to read after each epoch instead of every row group."""
        folder = self.summary.heldout
        if self.num_val == 0 or folder is None or not folder.is_dir():
            return None
        with contextlib.suppress(DataError):
            copy = ParquetParts.open(folder)
            if copy.num_rows == self.num_val and copy.names == self.columns:
                return copy
        return None  # missing or partial (removed, or a parallel run writing it): the rows are read from the data

    def train_sampler(self) -> RowGroupSampler:
        hp = self.hparams
        return RowGroupSampler(
            self.num_train,
            hp.batch_size,
            **self.sampler_options(),
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
        if self.val_stream.parts is not self.parts:  # the copy: its rows are the held-out rows, in order
            return {"val": self.in_order(InOrderRows(self.val_stream), self.num_val)}
        rows = HeldOutRows(self.val_stream, self.key, self.threshold, self.summary.val_counts)
        return {"val": self.in_order(rows, self.num_val)}

    def largest_label(self) -> float:
        """The largest |y| of the data."""
        return self.largest(self.hparams.target)

    def closed_form_solution(self, weight_decay: float = 0.0) -> ClosedForm:
        """The closed form of the training rows, from the pass's exact sums: no pass over the data."""
        return exactly(self.summary.gram, weight_decay, self.mean, self.std)

    def largest(self, name: str) -> float:
        """The largest |value| of a column, from the files' statistics (inf where a file lacks them)."""
        low, high = self.parts.column_range(name) or (float("-inf"), float("inf"))
        return max(abs(low), abs(high))

    def load_state_dict(self, state: dict) -> None:
        """Resuming: the same columns and the same files as the checkpoint's run, or one line saying which."""
        self.check_resume(state)
