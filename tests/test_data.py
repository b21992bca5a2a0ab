"""SyntheticRegressionDataModule: shapes, splits, noise level and the loaders' batching."""

import math

import pytest
import torch

from linreg.data import SyntheticRegressionDataModule


def make_data(**kwargs) -> SyntheticRegressionDataModule:
    dm = SyntheticRegressionDataModule(**kwargs)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("batch_size", [1, 7, 10, 64, 1000])
def test_train_loader_batches(batch_size):
    dm = make_data(num_examples=1000, num_val=50, batch_size=batch_size)
    batches = list(dm.train_dataloader())
    assert len(batches) == math.ceil(1000 / batch_size)
    last = 1000 - (len(batches) - 1) * batch_size
    assert [len(X) for X, _ in batches] == [batch_size] * (len(batches) - 1) + [last]
    for X, y in batches:
        assert X.shape == (len(X), 2) and y.shape == (len(X), 1)
        assert X.dtype == y.dtype == torch.float32
    # every training example exactly once per epoch, with its own label: the batches hold the rows of
    # [X, y], reordered (sorted by the first feature on both sides to compare them)
    seen = torch.cat([torch.cat([X, y], dim=1) for X, y in batches])
    stored = torch.cat(dm.train_set.tensors, dim=1)
    assert torch.equal(seen[seen[:, 0].argsort()], stored[stored[:, 0].argsort()])


def test_split_sizes_and_evaluation_loaders():
    dm = make_data(num_examples=300, num_val=120, eval_batch_size=100)
    assert dm.train_set.tensors[0].shape == (300, 2) and dm.val_set.tensors[1].shape == (120, 1)
    loaders = dm.val_dataloader()
    assert list(loaders) == ["train", "val"]  # the names LinearRegressionScratch logs them under
    assert [len(X) for X, _ in loaders["train"]] == [100, 100, 100]
    assert [len(X) for X, _ in loaders["val"]] == [100, 20]
    # read in order, as views of the stored tensors
    assert torch.equal(torch.cat([X for X, _ in loaders["val"]]), dm.val_set.tensors[0])
    assert make_data(num_val=0).val_set is None and list(make_data(num_val=0).val_dataloader()) == ["train"]


@pytest.mark.parametrize("noise", [0.01, 0.5])
def test_residual_std_is_the_noise_level(noise):
    dm = make_data(num_examples=20000, num_val=0, noise=noise, true_w=(2.0, -3.4), true_b=4.2)
    X, y = dm.train_set.tensors
    residual = y.reshape(-1) - (X @ torch.tensor([2.0, -3.4]) + 4.2)
    assert residual.std().item() == pytest.approx(noise, rel=0.03)
    assert residual.mean().abs().item() < 4 * noise / math.sqrt(20000)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make_data(seed=5), make_data(seed=5), make_data(seed=6)
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])
    assert torch.equal(a.val_set.tensors[1], b.val_set.tensors[1])
    assert not torch.equal(a.train_set.tensors[0], c.train_set.tensors[0])


def test_num_features_draws_a_true_w_from_the_seed():
    a = SyntheticRegressionDataModule(true_w=None, num_features=5, seed=1)
    assert a.num_inputs == 5 and a.true_w.shape == (5,)
    assert torch.equal(a.true_w, SyntheticRegressionDataModule(true_w=None, num_features=5, seed=1).true_w)
    assert not torch.equal(a.true_w, SyntheticRegressionDataModule(true_w=None, num_features=5, seed=2).true_w)
    with pytest.raises(ValueError, match="disagrees"):
        SyntheticRegressionDataModule(true_w=(1.0, 2.0), num_features=3)


def test_outliers_are_gross_errors_on_a_seeded_fraction_of_the_training_labels_only():
    clean = SyntheticRegressionDataModule(num_examples=1000, num_val=200, seed=3)
    dirty = SyntheticRegressionDataModule(num_examples=1000, num_val=200, seed=3, outliers=0.05, outlier_scale=100)
    (X, y, X_val, y_val), (X2, y2, X2_val, y2_val) = clean.make_data(torch.float64), dirty.make_data(torch.float64)
    assert torch.equal(X, X2) and torch.equal(X_val, X2_val) and torch.equal(y_val, y2_val)  # the rest is clean
    shift = (y2 - y).reshape(-1)
    moved = shift.nonzero().reshape(-1)
    assert len(moved) == 50  # 5 % of 1000
    assert torch.allclose(shift[moved].abs(), torch.full((50,), 100.0, dtype=torch.float64))
    assert 0 < (shift[moved] > 0).sum() < 50  # both signs
    again = SyntheticRegressionDataModule(num_examples=1000, num_val=200, seed=3, outliers=0.05)
    assert torch.equal(again.make_data(torch.float64)[1], y2)  # the same rows and signs from the same seed
