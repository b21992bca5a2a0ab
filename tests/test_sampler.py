"""MinibatchSampler has the book's data_iter semantics, reproducibly."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from linreg.sampler import MinibatchSampler, derive_seed


def epoch_batches(sampler: MinibatchSampler, epoch: int) -> list[torch.Tensor]:
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize(("num_examples", "batch_size"), [(1000, 10), (25, 10), (7, 7), (7, 100), (1, 1)])
def test_each_epoch_is_a_permutation_of_all_indices(num_examples, batch_size):
    sampler = MinibatchSampler(num_examples, batch_size, seed=3)
    for epoch in range(3):
        indices = torch.cat(epoch_batches(sampler, epoch))
        assert torch.equal(indices.sort().values, torch.arange(num_examples))


def test_batch_sizes_keep_the_short_last_batch():
    sampler = MinibatchSampler(25, 10)
    assert [len(batch) for batch in sampler] == [10, 10, 5]
    assert len(sampler) == 3


def test_a_new_order_every_epoch_and_the_same_for_the_same_seed_and_epoch():
    a, b = MinibatchSampler(100, 10, seed=7), MinibatchSampler(100, 10, seed=7)
    first, second = torch.cat(epoch_batches(a, 0)), torch.cat(epoch_batches(a, 1))
    assert not torch.equal(first, second)
    assert torch.equal(first, torch.cat(epoch_batches(b, 0)))
    assert torch.equal(second, torch.cat(epoch_batches(b, 1)))
    other_seed = torch.cat(epoch_batches(MinibatchSampler(100, 10, seed=8), 0))
    assert not torch.equal(first, other_seed)


def test_order_is_independent_of_the_global_rng():
    sampler = MinibatchSampler(100, 10, seed=1)
    torch.manual_seed(0)
    first = torch.cat(list(sampler))
    torch.manual_seed(12345)
    torch.randn(1000)
    assert torch.equal(first, torch.cat(list(sampler)))


def test_unshuffled_batches_are_slices_in_order():
    assert list(MinibatchSampler(25, 10, shuffle=False)) == [slice(0, 10), slice(10, 20), slice(20, 25)]


def test_dataloader_gathers_whole_batches_without_collation():
    X, y = torch.arange(50.0).reshape(25, 2), torch.arange(25.0).reshape(25, 1)
    sampler = MinibatchSampler(25, 10, seed=0)
    loader = DataLoader(TensorDataset(X, y), sampler=sampler, batch_size=None)
    for (X_batch, y_batch), indices in zip(loader, list(sampler), strict=True):
        assert torch.equal(X_batch, X[indices]) and torch.equal(y_batch, y[indices])


def test_rejects_a_non_positive_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        MinibatchSampler(10, 0)


def test_derived_seeds_differ_across_seeds_and_epochs():
    # torch's CPU generator keeps only 32 bits of a seed: derived seeds must differ in those bits.
    seeds = {derive_seed(seed, epoch) for seed in range(50) for epoch in range(50)}
    assert len(seeds) == 2500 and all(0 <= s < 2**32 for s in seeds)
