"""Streaming: chunks made by torch's generator, a two-level shuffle, and a billion examples never stored."""

import json

import pytest
import torch

from linreg import stream_order
from linreg.sampler import derive_seed
from linreg.stream_order import StreamingSampler, feistel, half_bits
from linreg.streaming import StreamingRegressionDataModule, SyntheticStream
from tests.conftest import command

train = command("train")


def streams(seed: int, num_features: int = 3, noise: float = 0.01) -> tuple[SyntheticStream, SyntheticStream]:
    """The training and held-out streams exactly as the DataModule wires them."""
    dm = StreamingRegressionDataModule(
        true_w=[1.0] * num_features, num_examples=10**9, batch_size=10, seed=seed, noise=noise
    )
    dm.setup("fit")
    return dm.train_stream, dm.val_stream


def test_the_features_are_standard_normal_and_uncorrelated_within_and_across_chunks():
    X, _ = streams(123, num_features=12)[0][slice(0, 300 * 1024)]  # (307200, 12): 300 chunks
    assert X.mean().abs().item() < 4 / (X.numel() ** 0.5)
    assert X.std().item() == pytest.approx(1.0, abs=0.005)
    assert (X.abs() > 3).float().mean().item() == pytest.approx(0.0027, abs=0.0004)  # normal tails
    correlation = torch.corrcoef(X.T) - torch.eye(12)
    assert correlation.abs().max().item() < 4.5 / (len(X) ** 0.5)  # no correlation between features
    # chunks are seeded base, base + 1, ...: a chunk's numbers against the next chunk's, row by row
    chunks = X[:, 0].reshape(300, 1024)
    shifted = torch.corrcoef(torch.stack([chunks[:-1].reshape(-1), chunks[1:].reshape(-1)]))[0, 1]
    assert shifted.abs().item() < 4.5 / (chunks[1:].numel() ** 0.5)


def test_y_is_the_linear_model_plus_the_noise():
    X, y = streams(5, noise=0.01)[0][slice(0, 50_000)]
    residual = y.reshape(-1) - (X.sum(dim=1) + 4.2)  # true w = (1, 1, 1), the book's b
    assert residual.std().item() == pytest.approx(0.01, rel=0.02)
    assert residual.mean().abs().item() < 4 * 0.01 / 50_000**0.5
    assert torch.corrcoef(torch.cat([X.T, residual[None]]))[-1, :-1].abs().max().item() < 4.5 / 50_000**0.5


def test_an_example_is_a_pure_function_of_the_seed_and_its_index():
    index = torch.tensor([0, 5, 1023, 1024, 2**40 + 3, 10**12])  # across chunk edges, and far beyond 2³²
    stream = streams(7)[0]
    X, y = stream[index]
    fresh = streams(7)[0]
    assert torch.equal(fresh[index.flip(0)][0].flip(0), X)  # order and company do not matter
    assert torch.equal(fresh[index[2:3]][0], X[2:3])
    assert torch.equal(fresh[slice(1020, 1030)][0][3:5], X[2:4])  # read in order: the same rows
    ahead = streams(7)[0]
    ahead.prefetch([0, 1, (2**40 + 3) // 1024])  # made on the background thread: the same numbers
    assert torch.equal(ahead[index][0], X) and torch.equal(ahead[index][1], y)
    assert not torch.equal(streams(8)[0][index][0], X)  # another seed, other numbers
    assert not torch.equal(X[0], X[1])


def test_a_chunk_forgotten_and_made_again_is_the_same():
    stream = streams(3)[0]
    index = torch.randint(0, 10 * 1024, (5000,), generator=torch.Generator().manual_seed(0))  # chunks 0-9
    first = stream[index]
    assert stream.capacity == 10  # grown to the chunks one read needs...
    stream.prefetch(range(100, 120))  # ...so 20 others push chunks 0-9 out of the pool
    assert not set(stream.slots) & set(range(10))
    again, fresh = stream[index], streams(3)[0][index]
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(first, again, fresh, strict=True))


def distinct_rows(*parts: torch.Tensor) -> int:
    return len(torch.unique(torch.cat(parts), dim=0))


@pytest.mark.parametrize("seed", [0, 33749])
def test_held_out_examples_are_never_training_examples(seed):
    # the held-out chunks are the ones below the base, the training chunks the ones from it on
    train_stream, held_out = streams(seed)
    n = 2**16
    assert distinct_rows(train_stream[slice(0, n)][0], held_out[slice(0, n)][0]) == 2 * n


def test_other_seeds_train_on_other_examples():
    first, second = (streams(seed)[0][slice(0, 2**16)][0] for seed in (0, 21701))
    assert distinct_rows(first, second) == 2 * 2**16


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


def test_feistel_on_a_billion_maps_distinct_positions_to_distinct_indices():
    n = 10**9
    positions = torch.randint(0, n, (200_000,), generator=torch.Generator().manual_seed(0)).unique()
    order = feistel(11, positions, n)
    assert order.min() >= 0 and order.max() < n and len(order.unique()) == len(positions)
    assert not torch.equal(feistel(12, positions, n), order)  # a new key (epoch), a new order
    assert abs(order.float().mean().item() / n - 0.5) < 0.01  # spread over the whole range


def reference_chunks(n: int, seed: int, epoch: int, chunk: int) -> list[int]:
    """The epoch's chunks in order: the full ones through the Feistel network, the short last one last."""
    key, full = derive_seed(seed, epoch), n // chunk
    return [int(feistel(key, torch.tensor([j]), full)) for j in range(full)] + [full] * (n % chunk > 0)


def reference_order(n: int, seed: int, epoch: int, chunk: int, window: int) -> torch.Tensor:
    """The epoch's order as the module's docstring states it, written out example by example."""
    key, chunks = derive_seed(seed, epoch), -(-n // chunk)
    chunk_order = reference_chunks(n, seed, epoch, chunk)
    order = []
    for w in range(-(-chunks // window)):
        examples = [c * chunk + r for c in chunk_order[w * window : (w + 1) * window] for r in range(chunk)]
        examples = [i for i in examples if i < n]
        slots = torch.randperm(len(examples), generator=torch.Generator().manual_seed(derive_seed(key, -1 - w)))
        order += [examples[s] for s in slots.tolist()]
    return torch.tensor(order)


@pytest.mark.parametrize(("world_size", "batch_size"), [(1, 7), (2, 5), (3, 4)])
def test_the_streaming_order_is_chunks_in_feistel_order_shuffled_a_window_at_a_time(
    monkeypatch, world_size, batch_size
):
    # chunks of 8 examples, windows of 3: 1005 examples make 126 chunks (the last one of 5), 42 windows
    monkeypatch.setattr(stream_order, "CHUNK", 8)
    monkeypatch.setattr(stream_order, "WINDOW", 3)
    n, asked = 1005, []
    samplers = [
        StreamingSampler(n, batch_size, seed=2, num_replicas=world_size, rank=r, prefetch=asked.append)
        for r in range(world_size)
    ]
    for epoch in (0, 1):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        batches = [list(s) for s in samplers]
        assert all(len(b) == len(samplers[0]) for b in batches)  # the same number of steps on every rank
        order = reference_order(n, seed=2, epoch=epoch, chunk=8, window=3)
        for sampler, rank_batches in zip(samplers, batches, strict=True):
            for step, batch in enumerate(rank_batches):
                assert torch.equal(batch, order[slice(*sampler.bounds(step))])  # this global batch's part
            tail = list(sampler.batches(len(rank_batches) // 2))  # resuming mid-epoch: the same batches
            assert all(torch.equal(a, b) for a, b in zip(tail, rank_batches[len(rank_batches) // 2 :], strict=True))
        seen = torch.cat([batch for rank_batches in batches for batch in rank_batches])
        assert torch.equal(seen.sort().values, torch.arange(n))  # every index once per epoch
        assert not torch.equal(order[:24].sort().values, torch.arange(24))  # a window mixes chunks...
        assert len(set((order[:24] // 8).tolist())) == 3  # ...three of them, 24 examples
    assert not torch.equal(reference_order(n, 2, 0, 8, 3), reference_order(n, 2, 1, 8, 3))  # a new order each epoch
    # the data is asked for the chunks of windows 0 and 1 before window 0 is read, and so on, a window ahead
    assert asked[0] == reference_chunks(n, 2, 0, 8)[:6] and asked[1] == reference_chunks(n, 2, 0, 8)[3:9]


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
