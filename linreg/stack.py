"""What `linreg-train` trains: the plain core (linreg/model.py, linreg/data.py) with the speed layers on top.

    from linreg.stack import make_model, SyntheticData
    model = make_model("scratch", num_inputs=2, lr=0.03)
    dm = SyntheticData(batch_size=10, steps_per_execution=100)

Each class here is a plain class with layers mixed in, and adds nothing of its own:
- `StepsPerExecution` (linreg/steps_per_execution.py) on the module, `BlockLoading`
  (linreg/block_loading.py) on the data: K SGD updates per Lightning batch, and the position an exact
  mid-epoch resume needs in every checkpoint;
- `FastHookName` (linreg/fast_hooks.py): Lightning's bookkeeping around each hook call, made cheap.

The Trainer around them (callbacks, logger, checkpoint plugin) is built by linreg/runner.py.
tests/test_oracle.py proves that these take the same steps as the plain classes, bit for bit.
"""

from linreg.block_loading import BlockLoading
from linreg.concise import LinearRegressionConcise
from linreg.data import SyntheticRegressionDataModule
from linreg.fast_hooks import FastHookName
from linreg.file_data import FileRegressionDataModule
from linreg.model import LinearRegressionScratch
from linreg.steps_per_execution import StepsPerExecution
from linreg.streamed_file_data import StreamedFileRegressionDataModule
from linreg.streaming import StreamingRegressionDataModule


class Scratch(StepsPerExecution, FastHookName, LinearRegressionScratch):
    """The book's from-scratch model (§3.2), K updates per Lightning batch."""


class Concise(StepsPerExecution, FastHookName, LinearRegressionConcise):
    """The book's concise model (§3.5), K updates per Lightning batch."""


class SyntheticData(BlockLoading, SyntheticRegressionDataModule):
    """The book's synthetic data in memory, in blocks of K minibatches."""


class FileData(BlockLoading, FileRegressionDataModule):
    """A CSV or Parquet file, in blocks of K minibatches."""


class StreamedData(BlockLoading, StreamingRegressionDataModule):
    """The synthetic data as a stream, in blocks of K minibatches."""


class StreamedFileData(BlockLoading, StreamedFileRegressionDataModule):
    """Parquet data streamed a window of row groups at a time, in blocks of K minibatches."""


MODELS = {"scratch": Scratch, "concise": Concise}  # --implementation


def make_model(implementation: str = "scratch", **hparams) -> LinearRegressionScratch:
    """The module for `--implementation`, from its hyperparameters (a checkpoint's, or the command line's)."""
    return MODELS[implementation](**hparams)
