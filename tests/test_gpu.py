"""GPU runs through Lightning's accelerator; skipped where no CUDA device is present."""

import lightning as L
import pytest
import torch

from linreg.closed_form import closed_form
from linreg.data import SyntheticRegressionDataModule
from linreg.model import LinearRegressionScratch
from tests.conftest import StepRecorder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


class BatchDevices(L.Callback):
    def __init__(self):
        self.devices = set()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.devices |= {t.device.type for t in batch}


def test_fit_on_gpu_converges_like_on_cpu(make_trainer):
    torch.manual_seed(0)
    model, watcher = LinearRegressionScratch(), BatchDevices()
    trainer = make_trainer(accelerator="gpu", devices=1, max_epochs=3, callbacks=[watcher])
    trainer.fit(model, datamodule=SyntheticRegressionDataModule())
    assert model.w.device.type == "cuda" and trainer.global_step == 300
    assert trainer.callback_metrics["train/epoch_loss"].item() < 1e-4
    true_w = torch.tensor([[2.0], [-3.4]], device="cuda")
    assert (model.w.detach() - true_w).abs().max().item() < 5e-3
    assert watcher.devices == {"cuda"}


def test_the_data_moves_to_the_gpu_once_and_batches_are_gathered_there(make_trainer):
    dm = SyntheticRegressionDataModule(num_examples=1000, num_val=100)
    trainer = make_trainer(accelerator="gpu", devices=1, max_steps=1)
    trainer.fit(LinearRegressionScratch(), datamodule=dm)
    assert dm.train_set.tensors[0].device.type == "cuda" and dm.val_set.tensors[0].device.type == "cuda"
    sampler = dm.train_dataloader().sampler
    assert next(iter(sampler)).device.type == "cuda"  # the index batches too: no host-to-device copy per step


def test_same_seed_gives_the_same_data_and_batches_on_cpu_and_gpu(make_trainer):
    # the batches a GPU fit trains on, gathered on the GPU, against the CPU DataModule's for the same seed
    cpu = SyntheticRegressionDataModule(seed=3, num_examples=100, num_val=0)
    cpu.setup("fit")
    recorder = StepRecorder()
    gpu = SyntheticRegressionDataModule(seed=3, num_examples=100, num_val=0)
    make_trainer(accelerator="gpu", devices=1, max_epochs=2, limit_val_batches=0, callbacks=[recorder]).fit(
        LinearRegressionScratch(), datamodule=gpu
    )
    expected = []
    for epoch in range(2):
        loader = cpu.train_dataloader()
        loader.sampler.set_epoch(epoch)
        expected += list(loader)
    assert len(recorder.steps) == len(expected) == 20
    for step, (X, y) in zip(recorder.steps, expected, strict=True):
        assert step["X"].device.type == "cuda"
        assert torch.equal(step["X"].cpu(), X) and torch.equal(step["y"].cpu(), y)


def test_the_exact_closed_form_on_the_gpu_is_the_cpus_to_the_bit():
    from tests.test_exact_closed_form import filip_like

    X, y = filip_like()
    X, y = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    options = dict(center=X.mean(0), scale=X.std(0))
    cpu, gpu = closed_form(X, y, **options), closed_form(X.cuda(), y.cuda(), **options)
    assert gpu.method == cpu.method == "exact, refined"
    assert torch.equal(gpu.data_w, cpu.data_w) and torch.equal(gpu.data_b, cpu.data_b)  # the same exact integers


def test_a_stream_fills_its_pool_on_the_gpu_with_the_same_rows_from_the_row_cache_as_from_the_files(
    tmp_path, monkeypatch
):
    # the pool lives on the device; a group read from the row cache, or from its standardized copy, goes
    # through host rows of its own
    from linreg.file_summary import summarize
    from linreg.parquet_parts import ParquetParts
    from linreg.row_cache import RowCache
    from linreg.row_group_pool import RowGroupStream, columns_standardization
    from linreg.training_rows import TrainingRows, training_rows
    from tests.test_parquet_parts import write_parts

    monkeypatch.setenv("LINREG_CACHE", str(tmp_path / "cache"))
    write_parts(tmp_path / "data")
    parts, columns = ParquetParts.open(tmp_path / "data"), ["a", "b", "c", "y"]
    summary = summarize(parts, columns, key=1, threshold=0, row_cache=True)
    cache = RowCache.open(summary.rows, parts.num_rows, len(columns))
    center, scale = columns_standardization(summary.mean, summary.std)
    copy = training_rows(summary.rows, parts.num_rows, len(columns), center, scale, torch.float32, write=True)
    assert isinstance(copy, TrainingRows)
    streams = [RowGroupStream(parts, columns, summary.mean, summary.std, "cuda", torch.float32, 4, rows)
               for rows in (None, cache, copy)]  # fmt: skip
    rows = torch.arange(parts.num_rows)
    (X, y), *others = (stream[rows] for stream in streams)
    assert X.device.type == "cuda" and all(torch.equal(X, Xo) and torch.equal(y, yo) for Xo, yo in others)
