"""Streaming: a counter-based generator, a Feistel permutation, and a billion examples never stored."""

import json

import pytest
import torch

from linreg.sampler import derive_seed
from linreg.streaming import (
    PHILOX_M,
    TRAIN_STREAM,
    VAL_STREAM,
    StreamingSampler,
    feistel,
    half_bits,
    normals,
    philox,
    stream_key,
)
from tests.conftest import command

train = command("train")


MASK32 = 2**32 - 1


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    [  # Random123's kat_vectors for philox4x32 with 10 rounds
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((MASK32,) * 4, (MASK32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_gives_random123s_known_answers(counter, key, expected):
    words = philox(tuple(torch.tensor([c]) for c in counter), key)
    assert tuple(int(w) for w in words) == expected


def test_int64_products_wrap_modulo_2_64_as_philox_assumes():
    # Philox reads a product's two 32-bit words out of one int64 (linreg.streaming.philox): exact only if
    # the int64 multiply wraps modulo 2⁶⁴ on this platform, products past 2⁶³ included.
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.tensor([0, 1, MASK32, MASK32 - 1]), torch.randint(0, 2**32, (10_000,), generator=g)])
    for m in (*PHILOX_M, MASK32, 1, 0):
        p = x * m
        hi, lo = (p >> 32) & MASK32, p & MASK32
        for xi, h, l in zip(x.tolist(), hi.tolist(), lo.tolist(), strict=True):
            assert (h << 32) | l == xi * m  # Python integers: exact
    assert MASK32 * PHILOX_M[0] >= 2**63  # the products above include ones that wrap around in int64


def test_normals_are_standard_normal_and_uncorrelated():
    z = normals((123, 0), index=torch.arange(300_000), count=12)  # (300000, 12)
    assert z.mean().abs().item() < 4 / (z.numel() ** 0.5)
    assert z.std().item() == pytest.approx(1.0, abs=0.005)
    assert (z.abs() > 3).float().mean().item() == pytest.approx(0.0027, abs=0.0004)  # normal tails
    correlation = torch.corrcoef(z.T) - torch.eye(12)
    assert correlation.abs().max().item() < 4.5 / (300_000**0.5)  # no correlation between features


def test_normals_are_a_pure_function_of_key_and_index():
    index = torch.tensor([0, 5, 2**40 + 3, 10**12])  # far beyond 2³²
    z = normals((7, 1), index, 5)
    assert torch.equal(normals((7, 1), index.flip(0), 5).flip(0), z)  # batch order and company do not matter
    assert torch.equal(normals((7, 1), index[2:3], 5), z[2:3])
    assert torch.equal(normals((7, 1), index, 9)[:, :5], z)  # the width does not change the first numbers
    assert not torch.equal(normals((8, 1), index, 5), z)  # another key, other numbers
    assert not torch.equal(z[0], z[1])


def distinct_rows(*streams: torch.Tensor) -> int:
    return len(torch.unique(torch.cat(streams), dim=0))


def test_held_out_examples_are_never_training_examples():
    # Seed 33749: under the old key-XOR hash, held-out example j was training example j ^ 21514, so all of
    # the first 2¹⁶ held-out examples were among the first 2¹⁶ training ones (seed 0 leaked at 10⁹).
    index = torch.arange(2**16)
    for seed in (0, 33749):
        train = normals(stream_key(seed, TRAIN_STREAM), index, 3)
        held_out = normals(stream_key(seed, VAL_STREAM), index, 3)
        assert distinct_rows(train, held_out) == 2 * len(index)


def test_other_seeds_train_on_other_examples():
    # Seeds 0 and 21701: under the old hash, one's training stream was the other's with indices XOR-shifted.
    index = torch.arange(2**16)
    first, second = (normals(stream_key(seed, TRAIN_STREAM), index, 3) for seed in (0, 21701))
    assert distinct_rows(first, second) == 2 * len(index)


def test_streams_of_different_keys_are_independent():
    index = torch.arange(200_000)
    pairs = [(stream_key(0, TRAIN_STREAM), stream_key(0, VAL_STREAM)), ((5, 0), (5, 1)), ((5, 0), (6, 0))]
    for a, b in pairs:
        x, y = normals(a, index, 1).reshape(-1), normals(b, index, 1).reshape(-1)
        assert torch.corrcoef(torch.stack([x, y]))[0, 1].abs().item() < 4.5 / len(index) ** 0.5
        # nor shifted: example i of one against example i + 1 of the other
        assert torch.corrcoef(torch.stack([x[1:], y[:-1]]))[0, 1].abs().item() < 4.5 / len(index) ** 0.5


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
def test_streaming_sampler_is_the_feistel_order_across_chunk_edges_and_ranks(monkeypatch, world_size, batch_size):
    # 64 examples of lookahead: the 1000-example epoch crosses many chunk edges, mid-batch too
    monkeypatch.setattr(StreamingSampler, "LOOKAHEAD_EXAMPLES", 64)
    n = 1000
    samplers = [StreamingSampler(n, batch_size, seed=2, num_replicas=world_size, rank=r) for r in range(world_size)]
    for epoch in (0, 1):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        batches = [list(s) for s in samplers]
        assert all(len(b) == len(samplers[0]) for b in batches)  # the same number of steps on every rank
        key = derive_seed(2, epoch)
        for sampler, rank_batches in zip(samplers, batches, strict=True):
            for step, batch in enumerate(rank_batches):
                lo, hi = sampler.bounds(step)
                assert torch.equal(batch, feistel(key, torch.arange(lo, hi), n))  # this global batch's part
        seen = torch.cat([batch for rank_batches in batches for batch in rank_batches])
        assert torch.equal(seen.sort().values, torch.arange(n))  # every index once per epoch


def test_a_billion_examples_train_and_the_same_seed_repeats(tmp_path, capsys):
    args = ["--streaming", "--num-examples", str(10**9), "--max-steps", "300", "--num-val", "500"]
    first = train.run(["--logdir", str(tmp_path), *args])
    out = capsys.readouterr().out
    assert "never stored" in out and "held-out stream of 500 examples" in out  # the output says so
    summary = json.loads((first / "summary.json").read_text())
    assert summary["global_step"] == 300 and summary["train_loss"] is None and summary["closed_form"] is None
    assert summary["val_loss"] < 1e-4  # learned, judged on the held-out stream
    assert max(abs(w - t) for w, t in zip(summary["w"], summary["true_w"], strict=True)) < 5e-3
    second = json.loads((train.run(["--logdir", str(tmp_path), *args]) / "summary.json").read_text())
    assert (second["w"], second["b"]) == (summary["w"], summary["b"])  # bit-identical
