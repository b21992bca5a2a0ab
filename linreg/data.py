"""The book's synthetic dataset as a LightningDataModule.

    dm = SyntheticRegressionDataModule(true_w=(2, -3.4), true_b=4.2, num_examples=1000, batch_size=10)
    trainer.fit(model, datamodule=dm)

Data is created in `setup`, from a generator seeded with `seed`, so the same seed always gives the same
training and held-out sets, whatever else uses torch's global RNG.

Loaders:
- `train_dataloader()`: the book's `data_iter` order through `MinibatchSampler` (shuffled each epoch).
- `val_dataloader()`: [training set, held-out set], both read in order in large chunks. Lightning runs them
  after every training epoch: the first gives the book's "loss on the whole training set", the second
  the held-out metrics. The held-out loader is left out when `num_val == 0`.

Under DDP (use `Trainer(use_distributed_sampler=False)`: Lightning's DistributedSampler would not keep
the book's order) every rank makes the same data from the seed; the sampler gives each rank its part of
every global batch, and each rank evaluates a contiguous shard of each set, which torchmetrics then
combines. Resuming mid-epoch, the sampler skips the batches the checkpoint had already trained on: its
position is saved in every checkpoint.
"""

from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from linreg.functions import synthetic_data
from linreg.sampler import Blocks, MinibatchSampler, derive_seed

# RNG streams of a seed (see derive_seed): the data and a drawn true w each get their own, apart from
# the sampler's per-epoch streams, which use the keys 0, 1, 2, ...
DATA_STREAM, TRUE_W_STREAM, OUTLIER_STREAM = -1, -2, -6


def batch_length(batch: torch.Tensor | slice) -> int:
    return len(batch) if isinstance(batch, torch.Tensor) else batch.stop - batch.start


class Gathered(Dataset):
    """A dataset indexed with a block (a list of index batches, see `Blocks`): the block's minibatches
    gathered in one indexing op, as (X, y, lengths); `X.split(lengths)` gives them back."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitem__(self, block: list) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        lengths = [batch_length(batch) for batch in block]
        if not block or isinstance(block[0], slice):  # in order: consecutive slices make one slice, a view
            index = slice(block[0].start, block[-1].stop) if block else slice(0, 0)
        else:
            index = torch.cat(block)  # (sum of lengths,)
        if isinstance(index, torch.Tensor) and isinstance(self.dataset, TensorDataset):
            # index_select copies whole rows; X[index] (advanced indexing) goes element by element and took
            # 2.5 x as long at 1M x 100 on the CPU. The same values either way.
            X, y = (tensor.index_select(0, index) for tensor in self.dataset.tensors)
        else:
            X, y = self.dataset[index]  # (sum of lengths, num_inputs), (sum of lengths, 1)
        return X, y, lengths


class InMemoryRegressionDataModule(L.LightningDataModule):
    """What every in-memory dataset here shares: data made once in `setup` and moved to the device, the
    book's shuffled minibatches for training, and in-order chunks of both sets for evaluation.

    Subclasses implement `make_data(dtype) -> (X, y, X_val, y_val)` (the held-out pair may be None) and
    save `batch_size`, `seed` and `eval_batch_size` among their hyperparameters.
    """

    evaluates_training_set = True  # val_dataloader()[0] is the training set (the book's epoch loss)
    true_w: torch.Tensor | None = None  # the true parameters, where the data has them (synthetic data)
    true_b: float | None = None
    feature_names: list[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.sampler: Blocks | None = None  # the training sampler in use
        self.sampler_state: dict | None = None  # its position, from a checkpoint being resumed

    def make_data(self, dtype: torch.dtype):
        raise NotImplementedError

    def closed_form_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training set for the closed form, (n, num_inputs) and (n, 1): the numbers trained on."""
        return self.train_set.tensors

    def setup(self, stage: str) -> None:
        if self.train_set is not None:  # fit, then validate: keep the same data
            return
        X, y, X_val, y_val = self.make_data(self.data_dtype())
        self.train_set = self.on_device(X, y)  # X: (num_examples, num_inputs), y: (num_examples, 1)
        if X_val is not None and len(X_val) > 0:
            self.val_set = self.on_device(X_val, y_val)

    def to_data_units(self, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's (w, b) in the units of the data the user gave, as float64 (num_inputs,) and (1,)
        on the CPU: unchanged here; a DataModule that rescales its features undoes that."""
        return w.detach().reshape(-1).cpu().double(), b.detach().reshape(-1).cpu().double()

    def root_device(self) -> torch.device:
        """Where the data lives: the trainer's device; the CPU without a trainer."""
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def on_device(self, X: torch.Tensor, y: torch.Tensor) -> TensorDataset:
        """The data moves to the trainer's device once, here; batches are then gathered on the device, and
        `transfer_batch_to_device` has nothing left to copy. Drawn on the CPU first, so the same seed gives
        the same data on every device."""
        device = self.root_device()
        return TensorDataset(X.to(device), y.to(device))

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        return batch  # already on the device: see on_device

    def data_dtype(self) -> torch.dtype:
        """float64 when the trainer runs in "64-true" precision, so the data is drawn in float64 rather
        than drawn in float32 and cast per batch; float32 otherwise."""
        precision = str(self.trainer.precision) if self.trainer is not None else ""
        return torch.float64 if precision.startswith("64") else torch.float32

    def ranks(self) -> tuple[int, int]:
        """(rank, world size) of this process: (0, 1) without a trainer or without DDP."""
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def train_sampler(self) -> MinibatchSampler:
        X = self.train_set.tensors[0]
        rank, world_size = self.ranks()
        hp = self.hparams
        return MinibatchSampler(
            len(X),
            hp.batch_size,
            shuffle=hp.get("shuffle", True),
            seed=hp.seed,
            device=X.device,
            num_replicas=world_size,
            rank=rank,
        )

    def blocks(self, sampler: MinibatchSampler) -> Blocks:
        """The training sampler's minibatches, `steps_per_execution` at a time, continuing from the position
        saved in the checkpoint when resuming (see `Blocks`).

        The order itself is a function of (seed, epoch) alone: no RNG state to restore. Lightning keeps
        its own count of the epoch's blocks and ends the epoch when it reaches len(blocks), so the two
        counts must agree. When Lightning resumes in a later epoch than the checkpoint's (it ended an
        epoch, or a --max-steps run, which Lightning records as a finished epoch), that epoch starts from
        its first block, and Lightning's count from 0: Lightning 2.6 carries the old count over when
        max_steps is set, and would end the epoch early.
        """
        progress = self.progress if self.trainer is not None else None
        blocks = Blocks(sampler, self.hparams.get("steps_per_execution", 1), progress)
        if self.sampler_state is None:
            return blocks
        state, self.sampler_state = self.sampler_state, None
        blocks.load_state_dict(state)
        if self.trainer is not None and state["epoch"] != self.trainer.current_epoch:
            self.trainer.fit_loop.epoch_loop.batch_progress.reset_on_run()
        return blocks

    def progress(self) -> tuple[int, int]:
        """(SGD updates done, blocks of this epoch done), as Lightning counts them."""
        return self.trainer.global_step, self.trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def state_dict(self) -> dict:
        """Saved in every checkpoint: the training sampler's position."""
        return {} if self.sampler is None else {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sampler_state = state.get("sampler")

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: the block of index batches goes straight to Gathered.__getitem__, which gathers
        # the K minibatches in one indexing op (no per-example collate).
        self.sampler = self.blocks(self.train_sampler())
        return DataLoader(Gathered(self.train_set), sampler=self.sampler, batch_size=None)

    @property
    def num_held_out(self) -> int:
        """Held-out examples in all (every rank holds the whole set): the evaluation's metrics depend on it."""
        return 0 if self.val_set is None else len(self.val_set)

    def shard(self, n: int) -> tuple[int, int]:
        """[lo, hi): this rank's contiguous shard of n examples to evaluate."""
        rank, world_size = self.ranks()
        return n * rank // world_size, n * (rank + 1) // world_size

    def in_order_sampler(self, n: int) -> MinibatchSampler | list[slice]:
        """Slices of n examples in order, in chunks of eval_batch_size. An empty shard (fewer examples than
        ranks) still gets one empty chunk: every rank must run the evaluation and its metrics' collectives."""
        return MinibatchSampler(n, self.hparams.eval_batch_size, shuffle=False) if n > 0 else [slice(0, 0)]

    def _in_order(self, dataset: TensorDataset) -> DataLoader:
        lo, hi = self.shard(len(dataset))
        shard = TensorDataset(*(t[lo:hi] for t in dataset.tensors))  # views, no copies
        return DataLoader(shard, sampler=self.in_order_sampler(hi - lo), batch_size=None)  # slices: views again

    def val_dataloader(self) -> list[DataLoader]:
        loaders = [self._in_order(self.train_set)]
        if self.val_set is not None:
            loaders.append(self._in_order(self.val_set))
        return loaders


class SyntheticRegressionDataModule(InMemoryRegressionDataModule):
    """y = X true_w + true_b + N(0, noise²), X ~ N(0, 1); `num_examples` to train on, `num_val` held out.

    Pass `true_w` (one weight per feature), or only `num_features` to draw a true w ~ N(0, 1) of that
    size from `seed`. `eval_batch_size` is the chunk size for the in-order evaluation loaders.
    `shuffle=False` trains on the stored order every epoch; `sort_by_label=True` stores the training set
    sorted by y, an order built to hurt SGD without reshuffling (the book's exercise).
    `outliers`: that fraction of the training labels, drawn with the seed, gets a gross error of
    ± `outlier_scale` (the exercise on losses); the held-out set stays clean.
    `steps_per_execution` K: each training batch carries K consecutive minibatches (see `Blocks`).
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
        steps_per_execution: int = 1,
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

    def make_data(self, dtype: torch.dtype):
        hp = self.hparams
        generator = torch.Generator().manual_seed(derive_seed(hp.seed, DATA_STREAM))
        # Training set first, then the held-out set, from one stream: both depend on the seed alone.
        X, y = synthetic_data(self.true_w, self.true_b, hp.num_examples, hp.noise, generator, dtype)
        X_val, y_val = synthetic_data(self.true_w, self.true_b, hp.num_val, hp.noise, generator, dtype)
        if hp.get("outliers", 0) > 0:  # gross errors on some training labels, from a stream of their own
            generator = torch.Generator().manual_seed(derive_seed(hp.seed, OUTLIER_STREAM))
            rows = torch.randperm(hp.num_examples, generator=generator)[: round(hp.outliers * hp.num_examples)]
            signs = torch.randint(0, 2, (len(rows), 1), generator=generator) * 2 - 1  # ±1
            y[rows] += hp.outlier_scale * signs.to(y.dtype)  # y: (num_examples, 1)
        if hp.sort_by_label:
            order = y.reshape(-1).argsort()  # (num_examples,): smallest label first
            X, y = X[order], y[order]
        return X, y, X_val, y_val
