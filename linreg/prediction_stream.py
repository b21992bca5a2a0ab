"""Predictions for Parquet data of any size: a row group at a time, in row order, written as they are made.

    predict_to_file(checkpoint_path, checkpoint, "sales/", "predictions.parquet")   # or .csv, or None: stdout

The rows go through Lightning's predict loop a row group at a time (`RowGroups`, an IterableDataset), and
a `BasePredictionWriter` callback appends each group's rows, as read, with their `prediction` column to the
output: a Parquet file (one row group per input group) or CSV. Memory: one row group, not the data. A
file is written under a temporary name and linked to its name only when complete: an interrupted run
leaves no half-written output, and an existing file is never overwritten.
"""

import os
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, IterableDataset

from linreg.parquet_files import checked_parquet_columns
from linreg.parquet_parts import ParquetParts
from linreg.prediction import model_and_features, predictor


class RowGroups(IterableDataset):
    """(X (rows, d) standardized in the model's dtype, group number) for each row group, in row order. Each
    group is read once, every column: `tables` keeps it as read until the writer takes it."""

    def __init__(self, parts: ParquetParts, features: list[str], scaling: dict | None, dtype: torch.dtype) -> None:
        self.parts, self.features, self.dtype = parts, features, dtype
        self.center = None if scaling is None else scaling["mean"].double()
        self.scale = None if scaling is None else scaling["std"].double()
        self.tables: dict[int, object] = {}  # group -> its pyarrow table, until written

    def __iter__(self):
        for g in range(len(self.parts.groups)):
            self.tables[g] = self.parts.read_table(g)  # every column, as read
            X = self.parts.read_group(g, self.features, self.dtype, self.center, self.scale, self.tables[g])
            yield X, torch.tensor(g)


class RowsWithPredictions(BasePredictionWriter):
    """Each group's rows as read, plus `prediction`, appended to the output as soon as they are predicted."""

    def __init__(self, groups: RowGroups, sink, parquet: bool) -> None:
        super().__init__(write_interval="batch")
        self.groups, self.sink, self.parquet, self.writer = groups, sink, parquet, None

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        import pyarrow as pa
        from pyarrow import csv as pacsv
        from pyarrow import parquet as pq

        table = self.groups.tables.pop(int(batch[1]))  # every column, as read
        table = table.append_column("prediction", pa.array(prediction.reshape(-1).cpu().numpy()))
        if self.writer is None:
            self.writer = (pq.ParquetWriter if self.parquet else pacsv.CSVWriter)(self.sink, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def predict_to_file(checkpoint_path: str, checkpoint: dict, data: str, output: str | None, accelerator: str) -> None:
    parts = ParquetParts.open(data)
    model, features, scaling = model_and_features(checkpoint_path, checkpoint, parts.names, data)
    checked_parquet_columns(data, parts, features)
    groups = RowGroups(parts, features, scaling, model.dtype)
    if output is None:
        return write(groups, model, accelerator, sys.stdout.buffer, parquet=False)
    partial = Path(output).with_name(f".{Path(output).name}.{os.getpid()}.partial")
    try:
        with partial.open("xb") as sink:
            write(groups, model, accelerator, sink, parquet=str(output).endswith(".parquet"))
        os.link(partial, output)  # fails rather than overwrite a file made meanwhile
    finally:
        partial.unlink(missing_ok=True)


def write(groups: RowGroups, model, accelerator: str, sink, parquet: bool) -> None:
    writer = RowsWithPredictions(groups, sink, parquet)
    loader = DataLoader(groups, batch_size=None)
    try:
        predictor(accelerator, model.dtype, [writer]).predict(model, loader, return_predictions=False)
    finally:
        writer.close()
