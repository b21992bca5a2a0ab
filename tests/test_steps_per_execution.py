"""Steps per execution: K SGD updates per Lightning batch is the same algorithm, bit for bit, at every edge."""

import json
import re

import pytest
import torch

from linreg.figures import read_scalars
from tests.conftest import command
from tests.test_distributed import run_cli

train = command("train")


def epoch_lines(out: str) -> list[str]:
    """The book's epoch lines: each at a line's start, or after the carriage return that clears the bar."""
    return re.findall(r"(?:^|\r)(epoch \d+, [^\r\n]*)$", out, re.M)


def run(tmp_path, name: str, *args: str) -> tuple[dict, dict]:
    run_dir = train.run(["--logdir", str(tmp_path / name), *args])
    return json.loads((run_dir / "summary.json").read_text()), read_scalars(run_dir)


def assert_identical(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    (summary_a, scalars_a), (summary_b, scalars_b) = a, b
    assert (summary_a["w"], summary_a["b"], summary_a["global_step"]) == (
        summary_b["w"],
        summary_b["b"],
        summary_b["global_step"],
    )
    assert summary_a["train_loss"] == summary_b["train_loss"] and summary_a["status"] == summary_b["status"]
    # every TensorBoard point, train/loss and params/* included: the same steps, the same values
    assert scalars_a == scalars_b


@pytest.mark.parametrize("K", ["3", "auto"])  # auto is 100 at batch 10: one block an epoch
def test_every_k_is_the_same_run_with_a_short_last_batch(tmp_path, capsys, K):
    args = ["--num-examples", "1005", "--num-val", "100"]  # 101 updates an epoch, the last of 5 examples
    one = run(tmp_path, "k1", *args, "--steps-per-execution", "1")
    lines_one = epoch_lines(capsys.readouterr().out)
    assert_identical(run(tmp_path, f"k{K}", *args, "--steps-per-execution", K), one)
    assert epoch_lines(capsys.readouterr().out) == lines_one
    assert one[0]["global_step"] == 303 and len(lines_one) == 3


def test_streaming_is_the_same_run_for_every_k(tmp_path):
    args = ["--streaming", "--num-examples", "1005", "--num-val", "100", "--max-epochs", "2"]
    assert_identical(run(tmp_path, "k7", *args, "--steps-per-execution", "7"), run(tmp_path, "k1", *args))


def test_max_steps_stops_in_the_middle_of_a_block(tmp_path):
    args = ["--max-steps", "150", "--seed", "3"]
    seven = run(tmp_path, "k7", *args, "--steps-per-execution", "7")  # 150 = 7·21 + 3: three into block 22
    assert seven[0]["global_step"] == 150
    assert_identical(seven, run(tmp_path, "k1", *args, "--steps-per-execution", "1"))


def test_divergence_stops_at_the_same_step_for_every_k(tmp_path, capsys):
    summaries = []
    for K in ("1", "7"):
        with pytest.raises(SystemExit) as exit_info:
            train.run(["--logdir", str(tmp_path / K), "--lr", "50", "--steps-per-execution", K])
        assert exit_info.value.code == 1
        summaries.append(json.loads((tmp_path / K / "version_0" / "summary.json").read_text()))
    assert summaries[0]["status"] == summaries[1]["status"] == "diverged at step 20"
    assert summaries[0]["global_step"] == summaries[1]["global_step"] == 20


def test_step_checkpoints_land_on_their_steps_mid_block_and_resume_exactly(tmp_path):
    # every 25 updates with blocks of 7: 25, 50, 75, ... fall inside blocks; stop at 130, resume from 125
    straight = run(tmp_path, "straight", "--steps-per-execution", "7")
    common = ["--steps-per-execution", "7", "--checkpoint-every-n-steps", "25"]
    first = train.run(["--logdir", str(tmp_path / "first"), *common, "--max-steps", "130"])
    checkpoint = first / "checkpoints" / "last-step.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 125
    resumed = run(tmp_path, "resumed", "--max-steps", "-1", "--resume", str(checkpoint))
    assert resumed[0]["global_step"] == 300
    assert (resumed[0]["w"], resumed[0]["b"]) == (straight[0]["w"], straight[0]["b"])


def test_resuming_mid_epoch_with_another_k_is_refused_in_one_line(tmp_path, capsys):
    first = train.run(["--logdir", str(tmp_path), "--steps-per-execution", "7", "--max-steps", "130",
                        "--checkpoint-every-n-steps", "25"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--logdir", str(tmp_path), "--steps-per-execution", "4",
                    "--resume", str(first / "checkpoints" / "last-step.ckpt")])  # fmt: skip
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("train.py: error:") and "--steps-per-execution 7" in line


def test_two_processes_with_blocks_equal_one_process_with_one_update_a_batch(tmp_path):
    _, two, _ = run_cli(tmp_path, "ddp", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
                        "--batch-size", "5", "--steps-per-execution", "3", "--num-examples", "1005")  # fmt: skip
    one = run(tmp_path, "one", "--accelerator", "cpu", "--max-epochs", "2", "--num-examples", "1005",
              "--steps-per-execution", "1")[0]  # fmt: skip
    assert two["global_step"] == one["global_step"] == 202
    assert (two["w"], two["b"]) == (one["w"], one["b"])  # bit for bit
