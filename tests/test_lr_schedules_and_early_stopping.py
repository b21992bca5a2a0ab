"""--lr-schedule and --early-stopping: the rates each update is taken at, and where training stops."""

import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from linreg.figures import read_scalars
from linreg.lr_schedules import cosine_factor, invscaling_factor, step_factor
from tests.conftest import command
from tests.test_distributed import run_cli
from tests.test_inputs import assert_one_line_error, in_process
from tests.test_resume import assert_same_run

train = command("train")


def run(tmp_path, *args: str) -> tuple[dict, Path]:
    run_dir = train.run(["--logdir", str(tmp_path), *args])
    return json.loads((run_dir / "summary.json").read_text()), run_dir


def rates(run_dir: Path) -> list[float]:
    """train/lr as written: the first update's at step 0, then every --log-every-n-steps updates the last's."""
    return [value for _, value in read_scalars(run_dir)["train/lr"]]


def test_cosine_starts_at_lr_never_rises_and_ends_below_5_percent(tmp_path):
    _, run_dir = run(tmp_path, "--lr-schedule", "cosine", "--max-epochs", "5")  # written every 10 updates
    lr = rates(run_dir)
    assert len(lr) == 51 and lr[0] == pytest.approx(0.03, rel=1e-7)  # step 0 (float32 in TensorBoard), then 50
    assert all(b <= a for a, b in itertools.pairwise(lr)) and lr[-1] < 0.05 * 0.03
    _, run_dir = run(tmp_path, "--lr-schedule", "cosine", "--max-epochs", "5", "--log-every-n-steps", "1")
    lr = rates(run_dir)[1:]  # each update's
    assert len(lr) == 500 and lr[0] == pytest.approx(0.03, rel=1e-7)
    assert all(b <= a for a, b in itertools.pairwise(lr)) and lr[-1] < 0.05 * 0.03
    # update t + 1 at 0.03 · (1 + cos(π t / 500)) / 2: a quarter of the way, 0.03 · (1 + 1/√2) / 2
    assert lr[125] == pytest.approx(0.03 * (1 + math.sqrt(0.5)) / 2, rel=1e-6)


def test_the_factors_are_the_formulas():
    assert [step_factor(t, 100, 0.5) for t in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]
    assert (
        cosine_factor(0, 300) == 1.0 and cosine_factor(150, 300) == pytest.approx(0.5) and cosine_factor(300, 300) == 0
    )
    assert invscaling_factor(15, 0.25) == 0.5  # lr / 16^(1/4)


def test_constant_is_the_default_run_bit_for_bit_and_any_schedule_is_the_same_at_every_k(tmp_path):
    default, _ = run(tmp_path)
    constant, _ = run(tmp_path, "--lr-schedule", "constant")
    assert (constant["w"], constant["b"]) == (default["w"], default["b"])
    # the steps-per-execution layer steps the schedule after each of its K updates, as the plain module does
    k1, _ = run(tmp_path, "--lr-schedule", "invscaling", "--steps-per-execution", "1")
    k100, _ = run(tmp_path, "--lr-schedule", "invscaling", "--steps-per-execution", "100")
    assert (k1["w"], k1["b"]) == (k100["w"], k100["b"]) and k1["w"] != default["w"]


def test_step_decays_once_an_epoch_by_gamma_unless_told(tmp_path):
    _, run_dir = run(tmp_path, "--lr-schedule", "step", "--log-every-n-steps", "1")
    lr = rates(run_dir)[1:]  # update 1's rate at step 0, then each update's
    assert lr[99] == pytest.approx(0.03) and lr[100] == pytest.approx(0.015) and lr[299] == pytest.approx(0.0075)
    _, run_dir = run(tmp_path, "--lr-schedule", "step", "--lr-step-size", "30", "--lr-gamma", "0.1",
                     "--log-every-n-steps", "1")  # fmt: skip
    assert rates(run_dir)[1:][60] == pytest.approx(0.0003)


def test_a_resume_inside_an_epoch_continues_the_schedule(tmp_path):
    straight, _ = run(tmp_path, "--lr-schedule", "invscaling")
    _, first = run(tmp_path, "--lr-schedule", "invscaling", "--max-steps", "150", "--checkpoint-every-n-steps", "150")
    checkpoint = str(first / "checkpoints" / "last-step.ckpt")
    resumed, second = run(tmp_path, "--max-steps", "-1", "--resume", checkpoint)
    assert_same_run(resumed, straight, tol=0)  # a schedule restarted at lr would take other steps
    assert rates(second)[0] == pytest.approx(0.03 / 160**0.25)  # the first write: update 160's rate, t = 159


def test_early_stopping_on_the_books_data_stops_well_before_200_and_keeps_the_best(tmp_path, capsys):
    summary, run_dir = run(tmp_path, "--early-stopping", "3", "--max-epochs", "200")
    out = capsys.readouterr().out
    assert summary["epochs"] < 50
    line = next(line for line in out.splitlines() if line.startswith("early stopping:"))
    assert f"stopped after epoch {int(summary['epochs'])}" in line and "best.ckpt" in line
    assert Path(summary["best_checkpoint"]).is_file() and Path(summary["checkpoint"]).is_file()
    scores = [value for _, value in read_scalars(run_dir)["val/loss"]]
    best = min(range(len(scores)), key=scores.__getitem__)  # the best epoch, and no better one in the 3 after it
    assert len(scores) == best + 1 + 3 and f"the best model, epoch {best + 1} " in line


def test_early_stopping_resumes_with_its_count_and_runs_under_streaming(tmp_path, capsys):
    straight, _ = run(tmp_path, "--early-stopping", "3", "--max-epochs", "200")
    assert straight["global_step"] == 1000  # best after epoch 7, no better in 8, 9, 10: stopped after 10
    # stopped in epoch 9, one evaluation (epoch 8's) after the best: the resume must count on from there
    _, first = run(tmp_path, "--early-stopping", "3", "--max-epochs", "200", "--max-steps", "850",
                   "--checkpoint-every-n-steps", "850")  # fmt: skip
    resumed, second = run(tmp_path, "--max-steps", "-1", "--resume", str(first / "checkpoints" / "last-step.ckpt"))
    assert resumed["global_step"] == straight["global_step"] and (resumed["w"], resumed["b"]) == (
        straight["w"],
        straight["b"],
    )
    # the best so far (epoch 7's) comes into the new folder with its score: no later epoch beat it
    assert (
        resumed["best_checkpoint"] == str(second / "checkpoints" / "best.ckpt")
        and Path(resumed["best_checkpoint"]).is_file()
    )
    assert torch.load(resumed["best_checkpoint"], weights_only=False)["epoch"] == 6  # Lightning counts from 0
    assert torch.load(straight["best_checkpoint"], weights_only=False)["epoch"] == 6
    assert (first / "checkpoints" / "best.ckpt").is_file()  # the old run's, as it was
    streamed, _ = run(tmp_path, "--streaming", "--early-stopping", "2", "--max-epochs", "100")
    assert streamed["epochs"] < 100 and Path(streamed["best_checkpoint"]).is_file()


def test_early_stopping_under_ddp_stops_every_process_at_the_same_epoch(tmp_path):
    ddp = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--batch-size", "5"]
    out, summary, _ = run_cli(tmp_path, "ddp", *ddp, "--early-stopping", "2", "--max-epochs", "100")
    assert summary["epochs"] < 100 and "early stopping: val/loss did not improve for 2 evaluations" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--early-stopping", "3", "--num-val", "0"], ["--early-stopping", "held-out"]),
        (["--early-stopping", "0"], ["--early-stopping", "at least 1"]),
        (["--lr-schedule", "cosine", "--lr-gamma", "0.5"], ["--lr-gamma", "--lr-schedule step", "ignored"]),
        (["--lr-schedule", "step", "--power-t", "0.5"], ["--power-t", "invscaling", "ignored"]),
        (["--lr-schedule", "step", "--lr-step-size", "0"], ["--lr-step-size", "positive"]),
    ],
)
def test_flags_that_cannot_work_are_one_line(capsys, args, words):
    assert_one_line_error(in_process(capsys, *args), *words)
