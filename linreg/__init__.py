"""linreg: D2L's linear regression from scratch (§3.2), as a PyTorch Lightning project.

The plain core: the book's algorithm lives in `linreg.functions`; `linreg.sampler` is its `data_iter`;
`linreg.model` and `linreg.data` wrap them for Lightning. `linreg.stack` adds the speed and fault layers
for the commands of `linreg.cli` (`linreg-train`, or `python scripts/train.py`). docs/design.md has the map.

    >>> from linreg import LinearRegressionScratch, SyntheticRegressionDataModule

The names below load on first use: `import linreg.cli` must not pull in torch and Lightning (~3 s), so
that `--help` and bad flags answer at once.
"""

import importlib

__version__ = "0.1.0"

_HOMES = {
    "BookSGD": "linreg.model",
    "LinearRegressionScratch": "linreg.model",
    "MinibatchSampler": "linreg.sampler",
    "SyntheticRegressionDataModule": "linreg.data",
    "linreg": "linreg.functions",
    "sgd": "linreg.functions",
    "squared_loss": "linreg.functions",
    "synthetic_data": "linreg.functions",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'linreg' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
