"""Parquet parts streamed (issue 27, in part): every training row once per epoch, checked by row identity;
an order that does not depend on the number of processes; held-out rows never trained on; the statistics
and the closed form from one cached pass, against numpy over the same rows."""

import itertools
import json
import os
import shutil
import threading

import numpy as np
import pytest
import torch

import linreg.file_summary
from linreg.file_stream import RowGroupSampler, held_out
from linreg.row_group_pool import RowGroupStream, stream_capacity
from linreg.sampler import derive_seed
from linreg.streamed_file_data import StreamedFileRegressionDataModule
from tests.conftest import command
from tests.test_distributed import run_cli
from tests.test_inputs import assert_one_line_error, in_process
from tests.test_parquet_parts import write_parts

train = command("train")
predict = command("predict")


pytestmark = pytest.mark.usefixtures("cache")  # tests/conftest.py: a cache folder of each test's own


def module(folder, **kwargs) -> StreamedFileRegressionDataModule:
    options = dict(features=["a", "b", "c"], val_fraction=0.2, batch_size=10, window_rows=700) | kwargs
    return StreamedFileRegressionDataModule(str(folder), "y", **options)


def sampler(dm, rank=0, world_size=1, batch_size=10) -> RowGroupSampler:
    return RowGroupSampler(dm.num_train, batch_size, shuffle=True, seed=0, num_replicas=world_size, rank=rank,
                           parts=dm.parts, counts=dm.summary.train_counts, key=dm.key, threshold=dm.threshold,
                           window_rows=dm.hparams.window_rows)  # fmt: skip


def test_every_training_row_once_per_epoch_in_a_new_order_mixing_files(tmp_path):
    write_parts(tmp_path / "data", sizes=(1000, 1537, 463), row_group_size=300)  # unequal groups and files
    dm = module(tmp_path / "data")
    rows = torch.arange(3000)
    training = rows[~held_out(rows, dm.key, dm.threshold)]
    s = sampler(dm)
    epochs = []
    for epoch in range(2):
        s.set_epoch(epoch)
        batches = list(s.batches(0))
        assert len(batches[-1]) == dm.num_train % 10 or len(batches[-1]) == 10  # the book's short last batch
        order = torch.cat(batches)
        assert torch.equal(order.sort().values, training)  # each training row exactly once
        epochs.append(order)
    assert not torch.equal(epochs[0], epochs[1])
    first = epochs[0][: dm.hparams.window_rows]  # one window mixes rows of several files' row groups
    assert len(torch.unique(torch.searchsorted(torch.tensor([1000, 2537]), first, right=True))) >= 2


def test_the_order_is_the_same_on_any_number_of_processes_and_resumes_mid_epoch(tmp_path):
    write_parts(tmp_path / "data", row_group_size=250)
    dm = module(tmp_path / "data")
    one = list(sampler(dm, batch_size=10).batches(0))  # 1 x 10
    halves = [list(sampler(dm, rank, 2, batch_size=5).batches(0)) for rank in range(2)]  # 2 x 5
    for step, batch in enumerate(one):
        assert torch.equal(torch.cat([halves[0][step], halves[1][step]]), batch)
    assert [torch.equal(a, b) for a, b in zip(list(sampler(dm).batches(57)), one[57:], strict=True)] == [True] * (
        len(one) - 57
    )  # a resume from step 57 continues the same epoch


def test_held_out_rows_are_never_trained_on_and_are_read_in_order(tmp_path):
    _, y_all = write_parts(tmp_path / "data")
    dm = module(tmp_path / "data", val_fraction=0.25)
    dm.setup("fit")
    trained = torch.cat(list(sampler(dm).batches(0)))
    rows = torch.arange(3000)
    val = rows[held_out(rows, dm.key, dm.threshold)]
    assert len(np.intersect1d(trained.numpy(), val.numpy())) == 0 and len(val) == dm.num_val
    assert 0.2 < dm.num_val / 3000 < 0.3
    _, y = next(iter(dm.val_dataloader()["val"]))  # in global order: the files' y at those rows
    in_path_order = y_all[np.r_[0:1000, 2500:3000, 1000:2500]]  # part-00000, part-00002, sub/part-00001
    np.testing.assert_array_equal(y.reshape(-1).numpy(), in_path_order[val.numpy()].astype(np.float32))


def test_the_evaluation_reads_the_passs_copy_of_the_held_out_rows_and_gets_the_same_bits(tmp_path):
    write_parts(tmp_path / "data")
    dm = module(tmp_path / "data")
    dm.setup("fit")
    copy = dm.val_stream.parts  # the held-out rows alone, one file per row group that has any
    assert copy is not dm.parts and copy.num_rows == dm.num_val < dm.parts.num_rows / 4
    assert len(copy.paths) == int((dm.summary.val_counts > 0).sum())
    from_copy = [torch.cat(t) for t in zip(*dm.val_dataloader()["val"], strict=True)]
    shutil.rmtree(dm.summary.heldout)  # gone (or partial): the rows are read from the data, as before the copy
    again = module(tmp_path / "data")
    again.setup("fit")
    assert again.val_stream.parts is again.parts
    from_data = [torch.cat(t) for t in zip(*again.val_dataloader()["val"], strict=True)]
    assert all(torch.equal(a, b) for a, b in zip(from_copy, from_data, strict=True))  # the same rows, in order


def test_the_streamed_rows_are_the_files_rows_standardized(tmp_path):
    X_all, y_all = write_parts(tmp_path / "data")
    dm = module(tmp_path / "data")
    dm.setup("fit")
    rows = torch.tensor([5, 2999, 1000, 1001, 42])
    X, y = dm.train_dataset()[rows]
    order = np.r_[0:1000, 2500:3000, 1000:2500]  # parts in path order: part-00000, part-00002, sub/part-00001
    expected = (X_all[order][rows.numpy()] - dm.mean.numpy()) / dm.std.numpy()
    np.testing.assert_allclose(X.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(y.reshape(-1).numpy(), y_all[order][rows.numpy()].astype(np.float32))


def test_statistics_and_closed_form_from_one_cached_pass_match_numpy(tmp_path, monkeypatch):
    X_all, y_all = write_parts(tmp_path / "data")
    order = np.r_[0:1000, 2500:3000, 1000:2500]
    dm = module(tmp_path / "data")
    keep = ~held_out(torch.arange(3000), dm.key, dm.threshold).numpy()
    X, y = X_all[order][keep], y_all[order][keep]
    np.testing.assert_allclose(dm.mean.numpy(), X.mean(0), rtol=0, atol=1e-15)  # Chan's merge: to rounding
    np.testing.assert_allclose(dm.std.numpy(), X.std(0, ddof=1), rtol=1e-13)
    solution = dm.closed_form_solution()
    lstsq = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[solution.data_w.numpy(), solution.data_b.numpy()], lstsq, rtol=1e-12)
    monkeypatch.setattr(linreg.file_summary, "group_pass", lambda *a: pytest.fail("the cache was not used"))
    assert torch.equal(module(tmp_path / "data").closed_form_solution().data_w, solution.data_w)


def test_the_cli_streams_resumes_exactly_and_streams_on_its_own_beyond_the_budget(tmp_path, capsys):
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--batch-size", "10"]
    whole = train.run([*args, "--streaming", "--max-epochs", "2", "--logdir", str(tmp_path / "a")])
    part = train.run([*args, "--streaming", "--max-epochs", "1", "--logdir", str(tmp_path / "b")])
    resumed = train.run(["--resume", str(part / "checkpoints" / "last.ckpt"), "--max-epochs", "2"])
    w = [json.loads((run / "summary.json").read_text())["w"] for run in (whole, resumed)]
    assert w[0] == w[1]
    capsys.readouterr()
    budget = train.run([*args, "--max-epochs", "1", "--memory-budget", "1e-5", "--logdir", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "above the budget of 1e-05 GB (--memory-budget)" in out and "a window of row groups at a time" in out
    assert json.loads((budget / "summary.json").read_text())["closed_form"]["method"] == "exact, refined"


@pytest.mark.parametrize(("kind", "precision", "per_cell"), [("parquet", "32", 12), ("parquet", "64-true", 16),
                                                              ("csv", "32", 16), ("csv", "64-true", 16)])  # fmt: skip
def test_the_budget_counts_the_peak_of_reading_into_memory(tmp_path, capsys, kind, precision, per_cell):
    # Parquet is read into the float64 copy, then standardized into the training dtype: 8 + 4 bytes a cell
    # at float32. A CSV file is read, then copied in the split's order: 8 + 8 (measured: docs/performance.md).
    # A budget just below rows × columns × per_cell streams; just above, it does not.
    import argparse

    from linreg.data_files import bytes_per_row
    from linreg.memory_budget import beyond_budget

    X, y = write_parts(tmp_path / "data", sizes=(1000,))
    path = tmp_path / "data" / "part-00000.parquet"
    if kind == "csv":
        path = tmp_path / "t.csv"
        lines = "".join(",".join(map(repr, [*r, t])) + "\n" for r, t in zip(X.tolist(), y.tolist(), strict=True))
        path.write_text("a,b,c,y\n" + lines)
    rows = 1000 if kind == "parquet" else os.path.getsize(path) // bytes_per_row(path)  # a CSV's: estimated
    need = rows * 4 * per_cell / 1e9
    args = argparse.Namespace(data=str(path), streaming=False, features=["a", "b", "c"], precision=precision)
    assert beyond_budget(argparse.Namespace(**vars(args), memory_budget=need * 0.999))
    assert "above the budget" in capsys.readouterr().out
    assert not beyond_budget(argparse.Namespace(**vars(args), memory_budget=need * 1.001))


def reads_per_epoch(dm, world_size: int, steps_per_execution: int = 1) -> int:
    """Row groups read by all ranks together in one epoch, each rank with its own stream, as under DDP. The
    minibatches are gathered K at a time, after the sampler has drawn them all, as BlockSampler does."""
    reads = 0
    for rank in range(world_size):
        stream = RowGroupStream(dm.parts, dm.columns, dm.mean, dm.std, "cpu", torch.float32,
                                stream_capacity(dm.parts, dm.hparams.window_rows))  # fmt: skip
        calls = []  # the row groups read, each as often as it is read
        stream.read = lambda g, slot, inline=False, stream=stream, calls=calls: (
            calls.append(g) or RowGroupStream.read(stream, g, slot, inline)
        )
        s = sampler(dm, rank, world_size, batch_size=10 // world_size)
        s.prefetch = stream.prefetch
        batches = s.batches(0)
        while block := list(itertools.islice(batches, steps_per_execution)):
            X, _ = stream[torch.cat(block)]
            assert X.is_contiguous()  # X apart from y in the pool: each matmul on X at full speed
        windows = s.windows(derive_seed(s.seed, s.epoch))
        assert stream.capacity <= 2 * max(map(len, windows)) < len(dm.parts.groups)  # two windows, not three
        stream.executor.shutdown()
        reads += len(calls)
    return reads


@pytest.mark.skipif(not hasattr(os, "setpriority") or os.uname().sysname != "Linux", reason="per-thread nice: Linux")
def test_the_reading_thread_runs_at_the_lowest_priority_and_training_at_its_own(tmp_path):
    write_parts(tmp_path / "data")
    dm = module(tmp_path / "data")
    stream = RowGroupStream(dm.parts, dm.columns, dm.mean, dm.std, "cpu", torch.float32, 4)
    stream.prefetch([0])

    def priority():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    reader = stream.executor.submit(priority).result()
    helper = stream.executor.submit(lambda: stream.buffers.helper().submit(priority).result()).result()
    assert (reader, helper, priority()) == (19, 19, 0)  # the reader's helper thread (linreg.read_buffers) too
    stream.executor.shutdown()


def test_two_ranks_read_each_row_group_about_once_an_epoch_not_twice(tmp_path):
    write_parts(tmp_path / "data", sizes=(4000, 4000, 4000), row_group_size=250)  # 48 groups, windows of 4+
    dm = module(tmp_path / "data", window_rows=1000)
    groups = len(dm.parts.groups)
    assert reads_per_epoch(dm, 1) == groups  # one rank: every group once
    # K minibatches drawn before they are gathered: the window they leave stays until the gather is made
    assert reads_per_epoch(dm, 1, steps_per_execution=37) == groups
    assert reads_per_epoch(dm, 2) <= 1.25 * groups  # two: each reads its lanes' groups, and shares the boundaries


def test_a_checkpoint_inside_an_epoch_resumes_exactly(tmp_path):
    # the second stop is a block's last update (100 at batch 10), saved before Lightning counts the block:
    # the resumed epoch starts with an empty block. Catches: the stream indexed with that block's slice(0, 0)
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming",
            "--batch-size", "10", "--max-epochs", "2"]  # fmt: skip
    straight = train.run([*args, "--logdir", str(tmp_path / "a")])
    a = json.loads((straight / "summary.json").read_text())
    for stop in (333, a["global_step"] // 2 + 100):  # inside the second epoch's second window; a block's end
        steps = ["--max-steps", str(stop), "--checkpoint-every-n-steps", str(stop)]
        first = train.run([*args, *steps, "--logdir", str(tmp_path / f"b{stop}")])
        resumed = train.run(["--resume", str(first / "checkpoints" / "last-step.ckpt"), "--max-steps", "-1"])
        b = json.loads((resumed / "summary.json").read_text())
        assert a["global_step"] == b["global_step"] and a["w"] == b["w"] and a["b"] == b["b"]


def test_two_processes_at_batch_5_end_where_one_at_batch_10_does(tmp_path):
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming"]
    ddp = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--batch-size", "5"]
    _, two, _ = run_cli(tmp_path, "ddp", *args, *ddp)
    one = json.loads((train.run([*args, "--batch-size", "10", "--max-epochs", "2", "--logdir", str(tmp_path / "one")])
                      / "summary.json").read_text())  # fmt: skip
    assert two["global_step"] == one["global_step"]
    np.testing.assert_allclose([*two["w"], two["b"]], [*one["w"], one["b"]], rtol=0, atol=1e-5)  # as in-memory DDP
    assert two["closed_form"] == one["closed_form"]  # the exact sums: the same bits


def test_a_changed_part_is_read_again_and_said_so(tmp_path):
    write_parts(tmp_path / "data")
    first = module(tmp_path / "data").closed_form_solution()
    write_parts(tmp_path / "data", seed=1)  # other numbers, the same layout
    with pytest.warns(UserWarning, match="changed since its cached pass .*: read again"):
        again = module(tmp_path / "data").closed_form_solution()
    assert not torch.equal(first.data_w, again.data_w)


def test_predict_streams_parts_a_row_group_at_a_time_in_row_order(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--max-epochs", "1"]
    run_dir = train.run([*args, "--streaming", "--logdir", str(tmp_path / "logs")])
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    out = tmp_path / "predictions.parquet"
    predict.main(["--checkpoint", checkpoint, "--data", str(tmp_path / "data"), "--output", str(out)])
    table = pq.read_table(out)
    assert table.column_names == ["id", "a", "b", "c", "y", "prediction"]
    assert table["id"].to_pylist() == [*range(1000), *range(2500, 3000), *range(1000, 2500)]  # path order
    summary = json.loads((run_dir / "summary.json").read_text())
    X = np.column_stack([table[c].to_numpy() for c in "abc"])
    np.testing.assert_allclose(table["prediction"].to_numpy(), X @ summary["w"] + summary["b"], rtol=1e-5, atol=1e-5)
    assert pq.ParquetFile(out).metadata.num_row_groups == 9  # one per input group: 3 + 2 + 4 (400-row groups)
    # a bad cell in a later group: one line, and no half-written output left behind
    part = tmp_path / "data" / "sub" / "part-00001.parquet"
    bad = pq.read_table(part)
    pq.write_table(bad.set_column(1, "a", pa.array([*bad["a"].to_pylist()[:-1], float("nan")])), part)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        predict.main(["--checkpoint", checkpoint, "--data", str(tmp_path / "data"), "--output", str(tmp_path / "p")])
    assert "part-00001.parquet, row 1500, column 'a': nan is not a finite number" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data", "logs", "predictions.parquet"]


def test_a_csv_beyond_the_budget_is_converted_once_and_streams(tmp_path, capsys):
    X, y = write_parts(tmp_path / "data", sizes=(2000,))
    rows = "a,b,c,y\n" + "".join(",".join(repr(float(v)) for v in [*r, t]) + "\n" for r, t in zip(X, y, strict=True))
    (tmp_path / "big.csv").write_text(rows)
    args = ["--data", str(tmp_path / "big.csv"), "--target", "y", "--max-epochs", "1", "--memory-budget", "1e-6"]
    first = train.run([*args, "--logdir", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert "above the budget" in out and "converting" in out and "to Parquet once, into" in out
    second = train.run([*args, "--logdir", str(tmp_path / "b")])
    assert "converting" not in capsys.readouterr().out  # reused
    closed = [json.loads((run / "summary.json").read_text())["closed_form"] for run in (first, second)]
    lstsq = np.linalg.lstsq(np.c_[X, np.ones(2000)], y, rcond=None)[0]  # all rows: the held-out ones too
    assert closed[0] == closed[1] and np.allclose([*closed[0]["w"], closed[0]["b"]], lstsq, atol=1e-3)
    (tmp_path / "big.csv").write_text(rows.replace(repr(float(X[3][1])), "three", 1))  # a bad cell, named by line
    capsys.readouterr()
    assert_one_line_error(in_process(capsys, *args, "--logdir", str(tmp_path / "c")), "line 5, column 'b'")


def test_two_nodes_on_localhost_launched_by_torchrun_end_where_one_process_does(tmp_path):
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT

    write_parts(tmp_path / "data")
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming",
            "--max-epochs", "2"]  # fmt: skip
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
              "--master-addr", "127.0.0.1", "--master-port", port]  # fmt: skip
    command = ["scripts/train.py", "--num-nodes", "2", "--devices", "1", "--accelerator", "cpu", "--strategy", "ddp",
               "--batch-size", "5", *args, "--logdir", str(tmp_path / "nodes")]  # fmt: skip
    pipes = dict(cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    nodes = [subprocess.Popen([*launch, "--node-rank", str(rank), *command], **pipes) for rank in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert "epoch 2" in outputs[0][0] and "epoch" not in outputs[1][0]  # node 0 talks; one run folder
    assert [p.name for p in (tmp_path / "nodes").iterdir()] == ["version_0"]
    two = json.loads((tmp_path / "nodes" / "version_0" / "summary.json").read_text())
    one = json.loads((train.run([*args, "--batch-size", "10", "--logdir", str(tmp_path / "one")]) / "summary.json")
                     .read_text())  # fmt: skip
    assert two["global_step"] == one["global_step"] and two["closed_form"] == one["closed_form"]
    np.testing.assert_allclose([*two["w"], two["b"]], [*one["w"], one["b"]], rtol=0, atol=1e-5)


def test_a_run_stopped_on_two_processes_resumes_on_one_at_the_same_global_batch(tmp_path):
    write_parts(tmp_path / "data")
    args = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming"]
    ddp = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--batch-size", "5"]
    stop = ["--max-steps", "333", "--checkpoint-every-n-steps", "333"]
    _, _, logdir = run_cli(tmp_path, "ddp", *args, *ddp, *stop)
    checkpoint = str(logdir / "version_0" / "checkpoints" / "last-step.ckpt")
    resumed = train.run(["--resume", checkpoint, "--max-steps", "-1", "--devices", "1", "--batch-size", "10",
                         "--strategy", "auto", "--logdir", str(tmp_path / "resumed")])  # fmt: skip
    one = train.run([*args, "--batch-size", "10", "--max-epochs", "2", "--logdir", str(tmp_path / "one")])
    a, b = (json.loads((run / "summary.json").read_text()) for run in (resumed, one))
    assert a["global_step"] == b["global_step"]
    np.testing.assert_allclose([*a["w"], a["b"]], [*b["w"], b["b"]], rtol=0, atol=1e-5)


def test_processes_started_together_share_the_pass_and_merge_it_into_the_same_bits(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    write_parts(tmp_path / "data", row_group_size=250)
    code = (
        "import json, sys; from linreg.streamed_file_data import StreamedFileRegressionDataModule as D; "
        f"dm = D({str(tmp_path / 'data')!r}, 'y', features=['a', 'b', 'c']); s = dm.closed_form_solution(); "
        "print(json.dumps([dm.mean.tolist(), dm.std.tolist(), dm.summary.train_counts.tolist(), s.data_w.tolist()]))"
    )
    env = dict(os.environ, LINREG_CACHE=str(tmp_path / "shared"), WORLD_SIZE="2")
    ranks = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env | {"RANK": str(r)},
                              stdout=subprocess.PIPE, text=True) for r in range(2)]  # fmt: skip
    shared = [json.loads(rank.communicate(timeout=120)[0]) for rank in ranks]
    alone = module(tmp_path / "data")  # this process: no launcher, every group read here
    expected = [alone.mean.tolist(), alone.std.tolist(), alone.summary.train_counts.tolist(),
                alone.closed_form_solution().data_w.tolist()]  # fmt: skip
    assert shared[0] == shared[1] == expected
    assert sorted(p.name.split(".", 1)[1] for p in (tmp_path / "shared").glob("*-of-2.json")) == [
        "0-of-2.json", "1-of-2.json"]  # each wrote its share  # fmt: skip
    copies = list((tmp_path / "shared").glob("heldout-*/group-*.parquet"))  # each its groups' held-out rows
    assert len(copies) == int((alone.summary.val_counts > 0).sum())


def test_kill_9_mid_epoch_then_resume_from_the_time_based_checkpoint_ends_as_a_straight_run(tmp_path):
    import signal
    import time

    import torch

    from tests.test_faults import final, newer_checkpoints, start_and_wait_for_training

    write_parts(tmp_path / "data", sizes=(20000, 20000, 20000), row_group_size=5000)
    data = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming"]
    run_args = [*data, "--max-epochs", "2", "--closed-form", "never"]  # 9600 steps: ~3 s of training here
    straight = final(train.run([*run_args, "--logdir", str(tmp_path / "straight")]))
    started = time.time()
    every = ["--checkpoint-every-seconds", "0.2"]  # a checkpoint well before a fast machine ends the run
    run = start_and_wait_for_training([*run_args, *every, "--logdir", str(tmp_path / "k")])
    while run.poll() is None and not newer_checkpoints(tmp_path / "k", started):
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL  # killed mid-run, after a time-based checkpoint inside the epoch
    checkpoint = max(newer_checkpoints(tmp_path / "k", 0), key=lambda p: p.stat().st_mtime)
    assert 0 < torch.load(checkpoint, weights_only=True)["global_step"] < 9600
    assert final(train.run(["--resume", str(checkpoint), "--logdir", str(tmp_path / "k")])) == straight


def test_sigterm_mid_run_saves_and_the_resume_ends_as_a_straight_run(tmp_path):
    import signal
    import time

    from tests.test_faults import final, start_and_wait_for_training

    write_parts(tmp_path / "data", sizes=(20000, 20000, 20000), row_group_size=5000)
    data = ["--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "b", "c", "--streaming"]
    run_args = [*data, "--max-epochs", "2", "--closed-form", "never"]
    straight = final(train.run([*run_args, "--logdir", str(tmp_path / "straight")]))
    run = start_and_wait_for_training([*run_args, "--logdir", str(tmp_path / "t")])
    time.sleep(0.2)
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=300)
    assert run.returncode == 128 + signal.SIGTERM
    summary = json.loads((tmp_path / "t" / "version_0" / "summary.json").read_text())
    assert summary["status"].startswith("interrupted at step ")
    assert final(train.run(["--resume", summary["checkpoint"], "--logdir", str(tmp_path / "t")])) == straight


def test_a_feature_named_twice_is_one_line(tmp_path, capsys):
    write_parts(tmp_path / "data")
    out = in_process(capsys, "--data", str(tmp_path / "data"), "--target", "y", "--features", "a", "a", "--streaming")
    assert_one_line_error(out, "--features names 'a' twice")


def test_while_a_file_streams_the_command_leaves_the_reader_a_core_and_puts_it_back(tmp_path):
    from linreg.cli import a_core_for_the_reader

    threads = torch.get_num_threads()
    with a_core_for_the_reader(True):
        assert torch.get_num_threads() == max(1, threads - 1)
    with a_core_for_the_reader(False):  # in memory, or synthetic data: every thread trains
        assert torch.get_num_threads() == threads
    assert torch.get_num_threads() == threads
    write_parts(tmp_path / "data")
    train.run(["--data", str(tmp_path / "data"), "--target", "y", "--streaming", "--logdir", str(tmp_path / "l")])
    assert torch.get_num_threads() == threads  # the command puts it back
