"""linreg: D2L's linear regression from scratch (§3.2), as a PyTorch Lightning project.

The book's algorithm lives in `linreg.functions`; `linreg.sampler` is its `data_iter`; `linreg.data` and
`linreg.model` wrap them for Lightning. Run it with `python scripts/train.py`.
"""

from linreg.data import SyntheticRegressionDataModule
from linreg.functions import linreg, sgd, squared_loss, synthetic_data
from linreg.model import BookSGD, LinearRegressionScratch
from linreg.sampler import MinibatchSampler

__all__ = [
    "BookSGD",
    "LinearRegressionScratch",
    "MinibatchSampler",
    "SyntheticRegressionDataModule",
    "linreg",
    "sgd",
    "squared_loss",
    "synthetic_data",
]
