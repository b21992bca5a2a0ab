"""Bad input ends with one clear line naming the problem and a non-zero exit, never a traceback."""

import json
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, command

train = command("train")

HOUSES = "area,age,price\n" + "".join(
    f"{50 + 7 * i},{i % 40},{3000 * (50 + 7 * i) - 1500 * (i % 40)}\n" for i in range(60)
)


def cli(script: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def csv_file(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """train.run(args) in this process: the same code as the CLI, without paying for a new interpreter."""
    with pytest.raises(SystemExit) as exit_info:
        train.run(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, exit_info.value.code, captured.out, captured.err)


def assert_one_line_error(out: subprocess.CompletedProcess, *words: str) -> None:
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # one line, so no traceback
    assert "Traceback" not in out.stderr and lines[0].startswith(("train.py: error:", "predict.py: error:"))
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--batch-size", "0"], ["--batch-size", "positive"]),
        (["--lr", "-0.1"], ["--lr", "positive"]),
        (["--num-examples", "0"], ["--num-examples"]),
        (["--num-val", "-1"], ["--num-val", "negative"]),
        (["--noise", "-0.5"], ["--noise", "negative"]),
        (["--true-w", "2", "x"], ["--true-w", "'x'"]),
        (["--true-w", "2", "-3.4", "--num-features", "3"], ["--num-features", "--true-w"]),
        (["--resume", "missing.ckpt"], ["missing.ckpt", "no such"]),
        (["--true-b", "nan"], ["--true-b", "'nan' is not a finite number"]),
        (["--true-w", "2", "nan"], ["--true-w", "'nan' is not a finite number"]),
        (["--noise", "inf"], ["--noise", "'inf' is not a finite number"]),
        (["--lr", "inf"], ["--lr", "'inf' is not a finite number"]),
        (["--lr=-inf"], ["--lr", "'-inf' is not a finite number"]),
        (["--log-every-n-steps", "0"], ["--log-every-n-steps", "positive"]),
        (["--checkpoint-every-n-steps", "-1"], ["--checkpoint-every-n-steps", "negative"]),
        (["--init-std", "-0.01"], ["--init-std", "negative"]),
        (["--num-features", "0"], ["--num-features", "positive"]),
        (["--loss", "cubic"], ["--loss", "'cubic'", "squared"]),
        (["--loss", "huber", "--huber-delta", "0"], ["--huber-delta", "positive"]),
        (["--outliers", "1"], ["--outliers", "[0, 1)"]),
        (["--outliers", "0.1", "--streaming"], ["--outliers", "not with --data or --streaming"]),
        (["--implementation", "concise", "--loss", "huber"], ["--implementation concise", "not with --loss huber"]),
        (["--weight-decay", "-1"], ["--weight-decay", "negative"]),
    ],
)
def test_bad_flags(tmp_path, capsys, args, words):
    assert_one_line_error(in_process(capsys, "--logdir", str(tmp_path), *args), *words)
    assert not (tmp_path / "version_0").exists()  # refused before any run folder was made


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_gpu_accelerator_without_a_gpu(tmp_path):
    assert_one_line_error(cli("train.py", "--logdir", str(tmp_path), "--accelerator", "gpu"), "--accelerator", "GPU")


@pytest.mark.parametrize(
    ("text", "extra", "words"),
    [
        (None, [], ["no such file"]),
        ("", [], ["empty", "header"]),
        ("area,age,price\n", [], ["no rows"]),
        ("area,age,price\n1,2,3\n4,five,6\n", [], ["line 3", "'age'", "'five'", "not a number"]),
        ("area,age,price\n1,2,3\n4,nan,6\n", [], ["line 3", "'age'", "finite"]),
        ("area,age,price\n1,2,3\n4,inf,6\n", [], ["line 3", "finite"]),
        ("area,age,cost\n1,2,3\n", [], ["target column 'price'"]),
        ("area,age,price\n1,2,3\n", ["--features", "area", "rooms"], ["feature column 'rooms'"]),
        ("area,age,price\n" + "".join(f"{i},5,{i}\n" for i in range(20)), [], ["'age'", "constant"]),
        ("area,age,price\n1,2,3\n4,5\n", [], ["line 3", "2 fields"]),
        ("area,age,price\n1,2,3\n4,5,6\n", ["--val-fraction", "1"], ["--val-fraction", "[0, 1)"]),
        ("area,age,price\n1,2,3\n4,5,6\n", ["--val-fraction", "-0.1"], ["--val-fraction", "[0, 1)"]),
        ("area,age,price\n1,2,3\n4,5,6\n", ["--num-val", "2"], ["2 rows", "hold out 2"]),
        ("area,area,price\n1,2,3\n", [], ["'area' twice", "columns 1 and 2"]),
        ("area,age,price\n1,2,3\n", ["--features", "area", "price"], ["'price' is the target"]),
        ("area,age,price\n1_000,2,3\n4,5,6\n", [], ["line 2", "'area'", "'1_000'", "not a number"]),
        ("area,age,price\n1,2,3\n4,5,6\n", ["--num-val", "1"], ["1 training row", "at least 2"]),
    ],
)
def test_bad_csv(tmp_path, capsys, text, extra, words):
    path = str(tmp_path / "missing.csv") if text is None else csv_file(tmp_path, text)
    out = in_process(capsys, "--logdir", str(tmp_path / "logs"), "--data", path, "--target", "price", *extra)
    assert_one_line_error(out, *words)


def test_a_bad_flag_from_the_command_line_prints_one_line(tmp_path):
    # the real process, once: what a user sees on the terminal
    assert_one_line_error(cli("train.py", "--logdir", str(tmp_path), "--batch-size", "-3"), "--batch-size")


def test_a_torch_file_without_w_and_b_is_not_taken_for_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, path)
    out = in_process(capsys, "--logdir", str(tmp_path), "--resume", str(path))
    assert_one_line_error(out, "other.ckpt", "no w and b")


def test_resume_and_predict_refuse_a_file_that_is_not_a_checkpoint(tmp_path):
    fake = csv_file(tmp_path, "not a checkpoint\n", "fake.ckpt")
    assert_one_line_error(cli("train.py", "--logdir", str(tmp_path), "--resume", fake), "fake.ckpt", "not a checkpoint")
    data = csv_file(tmp_path, HOUSES)
    assert_one_line_error(cli("predict.py", "--checkpoint", fake, "--data", data), "not a checkpoint")
    missing = str(tmp_path / "nope.ckpt")
    assert_one_line_error(cli("predict.py", "--checkpoint", missing, "--data", data), "nope.ckpt", "no such")


def test_divergence_stops_the_run_and_says_which_lr(tmp_path, capsys):
    out = in_process(capsys, "--logdir", str(tmp_path), "--lr", "50")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "inf or nan" in last and "with --lr 50:" in last
    # the rate suggested is below the bound the conditioning line gave (1.83 here), not a tenth of 50, which
    # diverges too: half the bound
    bound = float(re.search(r"lr above ([\d.e+-]+) diverges", out.stdout).group(1))
    suggested = float(re.search(r"e\.g\. --lr ([\d.e+-]+)\.", last).group(1))
    assert suggested == pytest.approx(bound / 2, rel=0.01) and suggested < bound
    summary = json.loads((tmp_path / "version_0" / "summary.json").read_text())
    assert summary["status"].startswith("diverged") and summary["w"] is None and summary["b"] is None
    assert summary["checkpoint"] is None  # a diverged run's parameters are no model to resume or predict from
    assert summary["global_step"] < 300  # stopped early
    assert list((tmp_path / "version_0").glob("events.out.tfevents.*"))  # what was logged is kept
