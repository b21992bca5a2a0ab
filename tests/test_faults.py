"""Faults a run survives: parallel launches, SIGINT and SIGTERM, kill -9, a wrong resume, a full disk.

The signals and kills come at random moments (seeded by the test's name, printed on failure); each
interrupted run is resumed and must end bit-identical to a run never interrupted.
"""

import errno
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from linreg.fault_tolerance import AtomicCheckpointIO
from linreg.stop_signals import Interrupted, StopSignals
from tests.claimer import claim_after
from tests.conftest import TerminalRun, command

train = command("train")

# 6000 updates: over a second of training on a machine 6 times faster than this one (~0.2 ms an update), so
# that a signal within 0.3 s of the start always finds it training; ~8 s here.
RUN = ["--num-examples", "60000", "--max-epochs", "1", "--num-val", "100", "--closed-form", "never"]


def final(run_dir: Path) -> tuple:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary["w"], summary["b"], summary["global_step"]


def test_runs_launched_together_get_folders_of_their_own(tmp_path):
    (tmp_path / "version_0").mkdir()  # an earlier run
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(8), context.Queue()
    processes = [context.Process(target=claim_after, args=(barrier, tmp_path, results)) for _ in range(8)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    names = sorted(results.get(timeout=5) for _ in processes)
    assert names == sorted(f"version_{n}" for n in range(1, 9))


def start_and_wait_for_training(args: list[str]) -> TerminalRun:
    """A CLI run at a terminal, returned once its progress bar shows that training has begun."""
    run = TerminalRun(args)
    while b"Epoch 0:" not in run.shown:  # tqdm's first draw of the epoch's bar
        assert run.poll() is None, f"the run ended before training: {run.shown.decode()[-2000:]}"
        time.sleep(0.005)
    return run


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The run never interrupted, in this process."""
    return final(train.run([*RUN, "--logdir", str(tmp_path_factory.mktemp("straight"))]))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_a_random_moment_stops_saves_and_resumes_exactly(tmp_path, signum, straight):
    delay = random.Random(f"{signum}{tmp_path.name}").uniform(0.0, 0.3)
    run = start_and_wait_for_training([*RUN, "--logdir", str(tmp_path)])
    time.sleep(delay)
    run.send_signal(signum)
    out = run.communicate(timeout=300)[0].decode()
    assert run.returncode == 128 + signum, f"delay {delay:.2f} s: {run.stderr_lines()[-20:]}"
    summary = json.loads((tmp_path / "version_0" / "summary.json").read_text())
    step = int(summary["status"].removeprefix("interrupted at step "))
    checkpoint = summary["checkpoint"]
    assert (
        f"{signal.Signals(signum).name}: stopped at step {step}; resume with: linreg-train --resume {checkpoint}" in out
    )
    assert run.stderr_lines() == [] and 0 < step < 6000 and summary["global_step"] == step
    # --resume alone: the checkpoint carries the run's settings
    assert final(train.run(["--resume", checkpoint])) == straight


def test_kill_9_never_leaves_a_broken_checkpoint(tmp_path):
    """kill -9 at 10 random moments of a process that writes checkpoints without pause: the newest always
    loads, and it is whole. One interpreter imports torch once and forks each writer, so that the kills
    cost no start-up."""
    script = """
import os, random, signal, sys, time
import torch
from linreg.checkpoint import atomic_save  # what AtomicCheckpointIO writes with

path, rng = sys.argv[1], random.Random(7)
for kill in range(10):
    writer = os.fork()
    if writer == 0:  # the child: checkpoints of growing steps, without pause, until killed
        torch.set_num_threads(1)
        step = 0
        while True:
            step += 1
            atomic_save({"step": step, "weights": torch.full((1 << 18,), float(step))}, path)
    while not os.path.exists(path):
        time.sleep(0.001)
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(writer, signal.SIGKILL)
    os.waitpid(writer, 0)
    checkpoint = torch.load(path, weights_only=True)  # the newest: it must load, and be whole
    assert torch.equal(checkpoint["weights"], torch.full((1 << 18,), float(checkpoint["step"])))
    print(kill, checkpoint["step"], flush=True)
    os.remove(path)  # the next writer starts over
"""
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "last-step.ckpt")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    steps = [int(line.split()[1]) for line in out.stdout.splitlines()]
    assert len(steps) == 10 and min(steps) >= 1  # killed 10 times, each time with a whole checkpoint to read


def test_kill_9_during_training_then_resume_ends_as_a_straight_run(tmp_path, straight):
    rng, checkpoint, kills = random.Random(11), None, 0
    for _ in range(2):  # two kills, each resumed from the newest checkpoint
        args = ["--resume", str(checkpoint)] if checkpoint else [*RUN, "--checkpoint-every-seconds", "1"]
        started = time.time()
        run = start_and_wait_for_training([*args, "--logdir", str(tmp_path)])
        # a random moment after this segment's first time-based checkpoint: each kill leaves one to resume
        while run.poll() is None and not newer_checkpoints(tmp_path, started):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        run.send_signal(signal.SIGKILL)
        kills += run.wait() == -signal.SIGKILL  # not if the rest of the run was shorter than a checkpoint's wait
        checkpoint = max(newer_checkpoints(tmp_path, 0), key=lambda p: p.stat().st_mtime)
        torch.load(checkpoint, weights_only=True)  # the newest: whole
    assert kills >= 1
    assert final(train.run(["--resume", str(checkpoint), "--logdir", str(tmp_path)])) == straight


def newer_checkpoints(logdir: Path, since: float) -> list[Path]:
    return [p for p in logdir.glob("version_*/checkpoints/last-step.ckpt") if p.stat().st_mtime > since]


def test_resume_alone_continues_with_the_runs_settings(tmp_path, capsys):
    flags = ["--lr", "0.1", "--batch-size", "20", "--checkpoint-every-n-steps", "30"]
    first = train.run([*flags, "--max-steps", "30", "--logdir", str(tmp_path / "a")])
    checkpoint = str(first / "checkpoints" / "last-step.ckpt")  # mid-epoch (50 steps an epoch): exact
    resumed = train.run(["--resume", checkpoint, "--max-steps", "60", "--logdir", str(tmp_path / "b")])
    assert "resuming with --max-steps 60 (the checkpoint's run had 30)" in capsys.readouterr().out
    hparams = json.loads((resumed / "summary.json").read_text())["hparams"]
    assert (hparams["lr"], hparams["batch_size"], hparams["max_steps"]) == (0.1, 20, 60)
    straight = train.run([*flags, "--max-steps", "60", "--logdir", str(tmp_path / "c")])
    assert final(resumed) == final(straight)


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--batch-size", "7"], "--batch-size 7 contradicts the checkpoint's run (--batch-size 10)"),
        (["--true-w", "1", "2", "3"], "--true-w 1.0 2.0 3.0 contradicts the checkpoint's run (--true-w not given)"),
    ],
)
def test_a_flag_that_contradicts_the_checkpoint_is_refused_before_training(tmp_path, capsys, flags, says):
    run_dir = train.run(["--max-steps", "5", "--logdir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--resume", str(run_dir / "checkpoints" / "last.ckpt"), *flags, "--logdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and says in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["version_0"]  # no run folder for a refused resume


def test_a_checkpoint_of_another_version_is_refused(tmp_path, capsys):
    run_dir = train.run(["--max-steps", "5", "--logdir", str(tmp_path)])
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["linreg"]["version"] = "0.0.1"
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--resume", str(tmp_path / "old.ckpt")])
    assert exit_info.value.code == 2 and "written by linreg 0.0.1, this is linreg" in capsys.readouterr().err


def test_a_full_disk_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last-step.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match=r"cannot write the checkpoint .*: No space left on device"):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last-step.ckpt"]  # no temporary file left behind


def test_a_logdir_that_cannot_be_made_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--logdir", str(tmp_path / "file" / "logs"), "--max-steps", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and len(err.strip().splitlines()) == 1
    assert f"--logdir {tmp_path / 'file' / 'logs'}: a file is in the way of the folder" in err


def test_before_training_a_signal_ends_at_the_next_check_then_it_is_held_and_a_second_ctrl_c_exits_at_once(
    monkeypatch,
):
    exits = []
    monkeypatch.setattr("os._exit", exits.append)  # the real one would end pytest
    before = signal.getsignal(signal.SIGINT)
    with StopSignals().installed() as signals:
        os.kill(os.getpid(), signal.SIGTERM)  # before training: noted, and the command's next check ends it
        with pytest.raises(Interrupted) as interrupted:
            signals.check()
        assert interrupted.value.signum == signal.SIGTERM
        signals.received = None  # as in a command that went on (this test, to try what comes next)
        signals.hold()  # training starts
        os.kill(os.getpid(), signal.SIGINT)  # the first: a request, noted for the next update boundary
        assert signals.received == signal.SIGINT and exits == []
        os.kill(os.getpid(), signal.SIGTERM)  # another signal changes nothing
        assert signals.received == signal.SIGINT and exits == []
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: out, now, with the shell's status for SIGINT
        assert exits == [130]
    assert signal.getsignal(signal.SIGINT) is before  # the handlers from before the command are back


def children_of(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc), e.g. the DDP ranks Lightning launches."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:  # the parent pid
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the DDP rank through /proc")
def test_under_ddp_a_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    ddp = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--batch-size", "5"]
    run = start_and_wait_for_training([*ddp, *RUN, "--logdir", str(tmp_path)])  # rank 0 and its bar
    (rank_1,) = children_of(run.pid)
    time.sleep(random.Random(3).uniform(0.0, 0.3))
    subprocess.run(["kill", "-TERM", str(rank_1)], check=True)  # rank 1 alone: rank 0 must hear of it
    out = run.communicate(timeout=300)[0].decode()
    assert run.returncode == 143, run.stderr_lines()[-20:]
    summary = json.loads((tmp_path / "version_0" / "summary.json").read_text())
    step = int(summary["status"].removeprefix("interrupted at step "))
    assert step % 10 == 0  # agreed where the ranks meet, every --log-every-n-steps updates
    assert torch.load(summary["checkpoint"], weights_only=True)["global_step"] == step
    assert f"SIGTERM: stopped at step {step}" in out
