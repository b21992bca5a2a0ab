"""A short fit on a GPU through Lightning's accelerator; skipped where no CUDA device is present."""

import pytest
import torch

from linreg.data import SyntheticRegressionDataModule
from linreg.model import LinearRegressionScratch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_fit_on_gpu_converges_like_on_cpu(make_trainer):
    torch.manual_seed(0)
    model = LinearRegressionScratch()
    trainer = make_trainer(accelerator="gpu", devices=1, max_epochs=3)
    trainer.fit(model, datamodule=SyntheticRegressionDataModule())
    assert model.w.device.type == "cuda" and trainer.global_step == 300
    assert trainer.callback_metrics["train/epoch_loss"].item() < 1e-4
    true_w = torch.tensor([[2.0], [-3.4]], device="cuda")
    assert (model.w.detach() - true_w).abs().max().item() < 5e-3
