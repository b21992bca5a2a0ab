"""DDP: the distributed sampler's slicing, and R processes at batch B ending where one process at R·B does."""

import json
import subprocess
import sys

import pytest
import torch

from linreg.sampler import MinibatchSampler
from tests.conftest import ROOT, command

train = command("train")


def rank_batches(num_examples, batch_size, world_size, epoch=0):
    samplers = [
        MinibatchSampler(num_examples, batch_size, seed=4, num_replicas=world_size, rank=r) for r in range(world_size)
    ]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return samplers, [list(sampler) for sampler in samplers]


@pytest.mark.parametrize(
    ("num_examples", "batch_size", "world_size"), [(100, 5, 2), (103, 5, 2), (101, 4, 3), (7, 2, 4)]
)
def test_each_global_batch_is_consecutive_permutation_indices_split_across_ranks(num_examples, batch_size, world_size):
    samplers, batches = rank_batches(num_examples, batch_size, world_size)
    steps = -(-num_examples // (batch_size * world_size))
    assert all(len(sampler) == steps for sampler in samplers)  # every rank steps as often: no DDP hang
    assert all(len(b) == steps for b in batches)
    permutation = samplers[0].permutation()  # the same order on every rank
    global_batch = batch_size * world_size
    for step in range(steps):
        parts = [batches[r][step] for r in range(world_size)]
        # rank order concatenated = this global batch of the single permutation
        assert torch.equal(torch.cat(parts), permutation[step * global_batch : (step + 1) * global_batch])
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)  # as even as possible


def test_short_last_global_batch_rule():
    _, batches = rank_batches(103, 5, 2)  # 10 full global batches, then 3 examples: rank 0 takes 2, rank 1 takes 1
    assert [len(batches[0][-1]), len(batches[1][-1])] == [2, 1]
    _, batches = rank_batches(7, 2, 4)  # one global batch of 7 over 4 ranks: 2, 2, 2, 1
    assert [len(b[0]) for b in batches] == [2, 2, 2, 1]


def run_cli(tmp_path, name, *args):
    logdir = tmp_path / name
    out = subprocess.run(
        [sys.executable, "scripts/train.py", "--logdir", str(logdir), "--max-epochs", "2", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout, json.loads((logdir / "version_0" / "summary.json").read_text()), logdir


@pytest.mark.parametrize("num_examples", ["1005"])  # the last global batch is 5, split 3 + 2 (1000 divides: no edge)
def test_two_cpu_processes_at_batch_5_equal_one_at_batch_10(tmp_path, num_examples):
    ddp = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--batch-size", "5"]
    stdout, two, logdir = run_cli(tmp_path, "ddp", *ddp, "--num-examples", num_examples)
    one_dir = train.run(["--logdir", str(tmp_path / "one"), "--max-epochs", "2", "--accelerator", "cpu",
                         "--batch-size", "10", "--num-examples", num_examples])  # fmt: skip
    one = json.loads((one_dir / "summary.json").read_text())
    assert two["global_step"] == one["global_step"] == 2 * -(-int(num_examples) // 10)
    for a, b in zip([*two["w"], two["b"]], [*one["w"], one["b"]], strict=True):
        assert abs(a - b) <= 1e-5
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)  # metrics combined across ranks
    # the closed form's loss, summed over both ranks' shards in the first evaluation, is the whole set's
    assert two["closed_form"]["train_loss"] == pytest.approx(one["closed_form"]["train_loss"], rel=1e-12)
    # rank 0 alone talks and writes: one seed line, one line per epoch, one run folder, and event files of
    # one process (their names end in host.pid.n; the HPARAMS summary, written after fit, opens a second)
    assert stdout.count("seed 0") == 1 and stdout.count("epoch 2, loss") == 1
    assert [p.name for p in logdir.iterdir()] == ["version_0"]
    events = list((logdir / "version_0").glob("events.out.tfevents.*"))
    assert len({name.name.split(".")[-2] for name in events}) == 1


@pytest.mark.parametrize("data", [[], ["--streaming"]])
def test_fewer_held_out_examples_than_ranks(tmp_path, data):
    # One held-out example over 2 ranks: rank 0's shard is empty, yet it must join every metric's collective.
    args = [*data, "--num-examples", "200", "--max-epochs", "1", "--num-val", "1"]
    _, two, _ = run_cli(
        tmp_path, "ddp", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", *args, "--batch-size", "5"
    )
    run_dir = train.run(["--logdir", str(tmp_path / "one"), "--accelerator", "cpu", *args, "--batch-size", "10"])
    one = json.loads((run_dir / "summary.json").read_text())
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-5)  # that one example's loss, on both
    assert two["global_step"] == one["global_step"] == 20
