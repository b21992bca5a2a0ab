"""The book's synthetic dataset as a LightningDataModule, read in the book's `data_iter` order.

    dm = SyntheticRegressionDataModule(true_w=(2, -3.4), true_b=4.2, num_examples=1000, batch_size=10)
    L.Trainer(max_epochs=3).fit(LinearRegressionScratch(), datamodule=dm)

The data is made in `setup` from a generator seeded with `seed`, so the same seed always gives the same
training and held-out sets, whatever else uses torch's global RNG. It is made on the CPU (the same numbers
on every device) and moved to the Trainer's device once; batches are then gathered there.

Loaders, each an ordinary DataLoader over a TensorDataset:
- `train_dataloader()`: the book's `data_iter` order through `MinibatchSampler`: a fresh permutation each
  epoch, every example once, the short last batch kept. `batch_size=None`: the sampler yields whole index
  batches, and the dataset is indexed with each in one op, no per-example collation.
- `val_dataloader()`: `{"train": ..., "val": ...}`, both sets in order in large chunks. Lightning runs them
  after every training epoch: the first gives the book's "loss on the whole training set", the second the
  held-out metrics (left out when `num_val == 0`).

Under DDP pass `Trainer(use_distributed_sampler=False)`: Lightning's DistributedSampler would not keep the
book's order. Every process makes the same data from the seed; the sampler gives each its part of every
global batch, and each evaluates a contiguous shard of each set, which torchmetrics then combines.
"""

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from linreg.functions import synthetic_data
from linreg.sampler import MinibatchSampler, derive_seed

# RNG streams of a seed (see derive_seed): the data and a drawn true w each get their own, apart from
# the sampler's per-epoch streams, which use the keys 0, 1, 2, ...
DATA_STREAM, TRUE_W_STREAM, OUTLIER_STREAM = -1, -2, -6


class RegressionDataModule(L.LightningDataModule):
    """What every in-memory dataset here shares: (X, y) made once in `setup` and moved to the device, the
    book's shuffled minibatches for training, and in-order chunks of both sets for evaluation.

    Subclasses implement `make_data(dtype) -> (X, y, X_val, y_val)` (the held-out pair may be None) and save
    `batch_size`, `seed`, `shuffle` and `eval_batch_size` among their hyperparameters.
    """

    true_w: torch.Tensor | None = None  # the true parameters, where the data has them (synthetic data)
    true_b: float | None = None
    feature_names: list[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.train_set: TensorDataset | None = None  # (num_examples, num_inputs), (num_examples, 1)
        self.val_set: TensorDataset | None = None

    def make_data(self, dtype: torch.dtype):
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        if self.train_set is not None:  # fit, then validate: keep the same data
            return
        X, y, X_val, y_val = self.make_data(self.data_dtype())
        self.train_set = self.on_device(X, y)
        if X_val is not None and len(X_val) > 0:
            self.val_set = self.on_device(X_val, y_val)

    def closed_form_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training set for the closed form, (n, num_inputs) and (n, 1): the numbers trained on."""
        return self.train_set.tensors

    def standardization(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(center, scale) (num_inputs,) each where the model trains on (X - center) / scale of
        `closed_form_data`'s X; None where it trains on X itself."""
        return None

    def to_data_units(self, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's (w, b) in the units of the data the user gave, as float64 (num_inputs,) and (1,)
        on the CPU: unchanged here; a DataModule that rescales its features undoes that."""
        return w.detach().reshape(-1).cpu().double(), b.detach().reshape(-1).cpu().double()

    def root_device(self) -> torch.device:
        """Where the data lives: the trainer's device; the CPU without a trainer."""
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def on_device(self, X: torch.Tensor, y: torch.Tensor) -> TensorDataset:
        return TensorDataset(X.to(self.root_device()), y.to(self.root_device()))

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        return batch  # already on the device: see on_device

    def data_dtype(self) -> torch.dtype:
        """float64 when the trainer runs in "64-true" precision (drawn in float64, not cast per batch)."""
        precision = str(self.trainer.precision) if self.trainer is not None else ""
        return torch.float64 if precision.startswith("64") else torch.float32

    def ranks(self) -> tuple[int, int]:
        """(rank, world size) of this process: (0, 1) without a trainer or without DDP."""
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def examples_per_batch(self) -> int:
        """Examples in one minibatch, over all processes: the global batch of one SGD update."""
        return self.hparams.batch_size * self.ranks()[1]

    def examples_per_read(self) -> int:
        """Examples the training loader reads at once, over all processes: one minibatch here."""
        return self.examples_per_batch()

    def train_sampler(self) -> MinibatchSampler:
        X = self.train_set.tensors[0]
        rank, world_size = self.ranks()
        hp = self.hparams
        return MinibatchSampler(
            len(X), hp.batch_size, shuffle=hp.shuffle, seed=hp.seed, device=X.device, num_replicas=world_size, rank=rank
        )

    def sampler_options(self) -> dict:
        """What a streamed data's sampler takes from the run, as train_sampler's: shuffling, the seed, the
        device, this process's rank."""
        rank, world_size = self.ranks()
        hp = self.hparams
        return dict(shuffle=hp.shuffle, seed=hp.seed, device=self.root_device(), num_replicas=world_size, rank=rank)

    def train_dataset(self):
        """What the training sampler's index batches index: TensorDataset[indices] is (X[indices], y[indices])."""
        return self.train_set

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_dataset(), sampler=self.train_sampler(), batch_size=None)

    def shard(self, n: int) -> tuple[int, int]:
        """[lo, hi): this process's contiguous shard of n examples to evaluate."""
        rank, world_size = self.ranks()
        return n * rank // world_size, n * (rank + 1) // world_size

    def in_order(self, dataset, n: int, start: int = 0) -> DataLoader:
        """This process's shard of examples [start, start + n) of `dataset`, in order, in chunks of
        eval_batch_size. An empty shard (fewer examples than processes) still gets one empty chunk: every
        process must run the evaluation and its metrics' collectives."""
        lo, hi = self.shard(n)
        chunks = MinibatchSampler(hi - lo, self.hparams.eval_batch_size, shuffle=False) if hi > lo else [slice(0, 0)]
        sampler = [slice(start + lo + s.start, start + lo + s.stop) for s in chunks]  # slices: views, no copies
        return DataLoader(dataset, sampler=sampler, batch_size=None)

    def val_dataloader(self) -> dict[str, DataLoader]:
        loaders = {"train": self.in_order(self.train_set, len(self.train_set))}
        if self.val_set is not None:
            loaders["val"] = self.in_order(self.val_set, len(self.val_set))
        return loaders


class SyntheticRegressionDataModule(RegressionDataModule):
    """y = X true_w + true_b + N(0, noise²), X ~ N(0, 1); `num_examples` to train on, `num_val` held out.

    Pass `true_w` (one weight per feature), or only `num_features` to draw a true w ~ N(0, 1) of that
    size from `seed`. `eval_batch_size` is the chunk size for the in-order evaluation loaders.
    `shuffle=False` trains on the stored order every epoch; `sort_by_label=True` stores the training set
    sorted by y, an order built to hurt SGD without reshuffling (the book's exercise).
    `outliers`: that fraction of the training labels, drawn with the seed, gets a gross error of
    ± `outlier_scale` (the exercise on losses); the held-out set stays clean.
    """

    def __init__(
        self,
        true_w: Sequence[float] | None = (2.0, -3.4),
        true_b: float = 4.2,
        num_examples: int = 1000,
        num_val: int = 1000,
        batch_size: int = 10,
        noise: float = 0.01,
        seed: int = 0,
        num_features: int | None = None,
        eval_batch_size: int = 65536,
        shuffle: bool = True,
        sort_by_label: bool = False,
        outliers: float = 0.0,
        outlier_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if not 0 <= outliers < 1:
            raise ValueError(f"outliers is a fraction of the training labels in [0, 1), got {outliers}")
        if true_w is None:
            if num_features is None:
                raise ValueError("give true_w or num_features")
            generator = torch.Generator().manual_seed(derive_seed(seed, TRUE_W_STREAM))
            true_w = torch.randn(num_features, generator=generator, dtype=torch.float64).tolist()
        elif num_features is not None and num_features != len(true_w):
            raise ValueError(f"num_features={num_features} disagrees with true_w of length {len(true_w)}")
        self.save_hyperparameters(ignore=["num_features"])
        self.hparams.true_w = [float(v) for v in true_w]
        self.true_w = torch.tensor(self.hparams.true_w, dtype=torch.float64)  # (num_inputs,), exact as given
        self.true_b = float(true_b)
        self.num_inputs = len(true_w)

    def largest_label(self) -> float:
        """A bound on the |y| drawn: |b| + 6 standard deviations of Xw + noise, plus the outliers' error."""
        hp = self.hparams
        spread = math.sqrt(float(self.true_w.square().sum()) + hp.noise**2)
        return abs(self.true_b) + 6 * spread + (hp.outlier_scale if hp.outliers > 0 else 0.0)

    def make_data(self, dtype: torch.dtype):
        hp = self.hparams
        generator = torch.Generator().manual_seed(derive_seed(hp.seed, DATA_STREAM))
        # Training set first, then the held-out set, from one stream: both depend on the seed alone.
        X, y = synthetic_data(self.true_w, self.true_b, hp.num_examples, hp.noise, generator, dtype)
        X_val, y_val = synthetic_data(self.true_w, self.true_b, hp.num_val, hp.noise, generator, dtype)
        if hp.outliers > 0:  # gross errors on some training labels, from a stream of their own
            generator = torch.Generator().manual_seed(derive_seed(hp.seed, OUTLIER_STREAM))
            rows = torch.randperm(hp.num_examples, generator=generator)[: round(hp.outliers * hp.num_examples)]
            signs = torch.randint(0, 2, (len(rows), 1), generator=generator) * 2 - 1  # ±1
            y[rows] += hp.outlier_scale * signs.to(y.dtype)  # y: (num_examples, 1)
        if hp.sort_by_label:
            order = y.reshape(-1).argsort()  # (num_examples,): smallest label first
            X, y = X[order], y[order]
        return X, y, X_val, y_val
