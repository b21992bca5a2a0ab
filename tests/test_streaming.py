"""Streaming: a counter-based generator, a Feistel permutation, and a billion examples never stored."""

import json

import pytest
import torch

from linreg.streaming import StreamingSampler, feistel, half_bits, normals
from tests.conftest import load_script

train = load_script("train")


def test_normals_are_standard_normal_and_uncorrelated():
    z = normals(key=123, index=torch.arange(300_000), count=12)  # (300000, 12)
    assert z.mean().abs().item() < 4 / (z.numel() ** 0.5)
    assert z.std().item() == pytest.approx(1.0, abs=0.005)
    assert (z.abs() > 3).float().mean().item() == pytest.approx(0.0027, abs=0.0004)  # normal tails
    correlation = torch.corrcoef(z.T) - torch.eye(12)
    assert correlation.abs().max().item() < 4.5 / (300_000**0.5)  # no correlation between features


def test_normals_are_a_pure_function_of_key_and_index():
    index = torch.tensor([0, 5, 2**40 + 3, 10**12])  # far beyond 2³²
    z = normals(7, index, 5)
    assert torch.equal(normals(7, index.flip(0), 5).flip(0), z)  # batch order and company do not matter
    assert torch.equal(normals(7, index[2:3], 5), z[2:3])
    assert not torch.equal(normals(8, index, 5), z)  # another key, other numbers
    assert not torch.equal(z[0], z[1])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 16, 17, 100, 1000, 1023, 1024, 1025, 65537])
def test_feistel_is_a_permutation_of_every_small_n(n):
    for key in range(3):
        order = feistel(key, torch.arange(n), n)
        assert torch.equal(order.sort().values, torch.arange(n))


def test_the_feistel_domain_covers_n_exactly_at_every_power_of_4():
    # math.log2 rounds to 50.0 at 4²⁵ + 1, which made the domain 4²⁵ < n: not a permutation any more
    for k in range(1, 32):
        for n in (4**k - 1, 4**k, 4**k + 1):
            h = half_bits(n)
            assert 4**h >= n and (h == 1 or 4 ** (h - 1) < n), n


def test_feistel_just_above_a_power_of_4_stays_in_range_and_distinct():
    n = 4**25 + 1
    positions = torch.cat([torch.arange(1000), torch.arange(n - 1000, n)])  # both ends, the last index too
    order = feistel(3, positions, n)
    assert order.min() >= 0 and order.max() < n and len(order.unique()) == len(positions)


def test_feistel_on_a_billion_maps_distinct_positions_to_distinct_indices():
    n = 10**9
    positions = torch.randint(0, n, (200_000,), generator=torch.Generator().manual_seed(0)).unique()
    order = feistel(11, positions, n)
    assert order.min() >= 0 and order.max() < n and len(order.unique()) == len(positions)
    assert not torch.equal(feistel(12, positions, n), order)  # a new key (epoch), a new order
    assert abs(order.float().mean().item() / n - 0.5) < 0.01  # spread over the whole range


@pytest.mark.parametrize(("world_size", "batch_size"), [(1, 7), (2, 5), (3, 4)])
def test_streaming_sampler_every_index_once_per_epoch_across_ranks(world_size, batch_size):
    n = 1000
    samplers = [StreamingSampler(n, batch_size, seed=2, num_replicas=world_size, rank=r) for r in range(world_size)]
    for epoch in (0, 1):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        batches = [list(s) for s in samplers]
        assert len({len(b) for b in batches}) == 1  # the same number of steps on every rank
        seen = torch.cat([batch for rank_batches in batches for batch in rank_batches])
        assert torch.equal(seen.sort().values, torch.arange(n))


def test_a_billion_examples_train_and_the_same_seed_repeats(tmp_path, capsys):
    args = ["--streaming", "--num-examples", str(10**9), "--max-steps", "300", "--num-val", "500"]
    first = train.main(["--logdir", str(tmp_path), *args])
    out = capsys.readouterr().out
    assert "never stored" in out and "held-out stream of 500 examples" in out  # the output says so
    summary = json.loads((first / "summary.json").read_text())
    assert summary["global_step"] == 300 and summary["train_loss"] is None and summary["closed_form"] is None
    assert summary["val_loss"] < 1e-4  # learned, judged on the held-out stream
    assert max(abs(w - t) for w, t in zip(summary["w"], summary["true_w"], strict=True)) < 5e-3
    second = json.loads((train.main(["--logdir", str(tmp_path), *args]) / "summary.json").read_text())
    assert (second["w"], second["b"]) == (summary["w"], summary["b"])  # bit-identical
