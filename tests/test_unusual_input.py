"""Bad and unusual input, as a new user gives it: one line and a non-zero exit, no traceback, no empty run
folder, and nothing silently wrong. One test per class of what a probe of the commands found."""

import json
import math
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from linreg import data_files
from tests.conftest import ROOT, command
from tests.test_inputs import HOUSES, assert_one_line_error, cli, csv_file, in_process

train = command("train")


def no_run_folder(logdir) -> bool:
    return not logdir.exists() or not any(logdir.iterdir())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--accelerator", "tpu"], ["--accelerator tpu", "torch_xla"]),
        (["--accelerator", "banana"], ["--accelerator", "auto, cpu, gpu, cuda, mps, tpu"]),
        (["--accelerator", "mps"], ["--accelerator mps", "not available"]),
        (["--devices", "banana"], ["--devices", "auto, a positive number, or a list"]),
        (["--devices", "0"], ["--devices", "'0'"]),
        (["--precision", "8"], ["--precision", "32-true, 64-true"]),
        (["--num-nodes", "0"], ["--num-nodes must be positive"]),
        (["--strategy", "banana"], ["strategy='banana'"]),  # Lightning's own judgement, before any folder
        (["--seed", "-1"], ["--seed", "between 0 and 4294967295"]),
        (["--seed", "4294967296"], ["--seed", "between 0 and 4294967295"]),
        (["--max-epochs", "0"], ["--max-epochs must be positive"]),
        (["--max-epochs", "-2"], ["--max-epochs must be positive"]),
        (["--max-steps", "0"], ["--max-steps must be positive, or -1"]),
    ],
)
def test_a_flag_for_lightnings_trainer_is_checked_before_any_folder(tmp_path, capsys, args, words):
    assert_one_line_error(in_process(capsys, "--logdir", str(tmp_path / "logs"), *args), *words)
    assert no_run_folder(tmp_path / "logs")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--target", "price"], "--target"),  # picks a file's column, without a file
        (["--features", "area"], "--features"),
        (["--no-row-cache"], "--no-row-cache"),  # a streamed file's, without a file
        (["--data", "HOUSES", "--target", "price", "--num-examples", "5"], "--num-examples"),
        (["--data", "HOUSES", "--target", "price", "--true-w", "1", "2"], "--true-w"),
    ],
)
def test_a_flag_that_would_be_ignored_is_refused_not_recorded(tmp_path, capsys, args, flag):
    args = [csv_file(tmp_path, HOUSES) if a == "HOUSES" else a for a in args]
    assert_one_line_error(in_process(capsys, "--logdir", str(tmp_path / "logs"), *args), flag, "ignored")
    assert no_run_folder(tmp_path / "logs")


def test_a_feature_named_twice_is_one_line(tmp_path, capsys):
    houses = csv_file(tmp_path, HOUSES)
    out = in_process(capsys, "--data", houses, "--target", "price", "--features", "area", "area")
    assert_one_line_error(out, "--features names 'area' twice")


@pytest.mark.parametrize(
    ("rows", "precision", "words"),
    [
        # a feature whose variance overflows float64: standardized, it would be all zeros
        ("x,y\n1e308,1\n-1e308,2\n5e307,3\n1,4\n2,5\n", "32-true", ["feature 'x' reaches 1e+308", "rescale"]),
        # a target whose squared loss overflows the training dtype, whatever the learning rate
        ("x,y\n1,1e200\n2,-1e200\n3,5e199\n4,1\n5,2\n", "32-true", ["target 'y' reaches 1e+200", "float32"]),
        ("x,y\n1,1e200\n2,-1e200\n3,5e199\n4,1\n5,2\n", "64-true", ["target 'y' reaches 1e+200", "float64"]),
        (HOUSES, "16-true", ["target 'price' reaches", "float16", "--precision 16-true"]),
    ],
)
def test_data_too_large_for_the_dtype_is_named_not_blamed_on_the_lr(tmp_path, capsys, rows, precision, words):
    data = csv_file(tmp_path, rows)
    target = "price" if rows == HOUSES else "y"
    out = in_process(capsys, "--data", data, "--target", target, "--num-val", "0", "--precision", precision,
                     "--logdir", str(tmp_path / "logs"))  # fmt: skip
    assert_one_line_error(out, *words)
    assert "smaller learning rate" not in out.stderr and no_run_folder(tmp_path / "logs")


def test_parquet_integers_beyond_2_to_the_53_are_rounded_with_a_warning(tmp_path):
    path = tmp_path / "big.parquet"
    big = 2**60 + 1  # no float64 holds it: the nearest is 2**60
    pq.write_table(pa.table({"x": pa.array([1, 2, big], pa.int64()), "y": [1.0, 2.0, 3.0]}), path)
    with pytest.warns(UserWarning, match=r"column 'x': integers beyond float64's 2⁵³ are rounded to the nearest"):
        X = data_files.read_columns(path, ["x", "y"])
    assert X[:, 0].tolist() == [1.0, 2.0, float(2**60)]
    # one line for the file, not one per row group: the same text each time, which Python shows once
    pq.write_table(pa.table({"x": pa.array([big + i for i in range(30)]), "y": [float(i) for i in range(30)]}), path,
                   row_group_size=10)  # fmt: skip
    out = cli("train.py", "--data", str(path), "--target", "y", "--max-epochs", "1", "--logdir", str(tmp_path / "l"))
    assert out.stderr.count("beyond float64") == 1, out.stderr


def test_a_folder_with_a_column_of_text_is_one_line_in_memory_streamed_and_predicted(tmp_path, capsys):
    (tmp_path / "parts").mkdir()
    for i in range(2):
        pq.write_table(pa.table({"x": ["a", "b", "c"], "z": [1.0, 2.0, 4.0], "y": [1.0, 2.0, 3.0]}),
                       tmp_path / "parts" / f"part-{i}.parquet")  # fmt: skip
    for streaming in ([], ["--streaming"]):
        args = ["--data", str(tmp_path / "parts"), "--target", "y", "--num-val", "1", *streaming]
        out = in_process(capsys, *args, "--logdir", str(tmp_path / "logs"))
        assert_one_line_error(out, "parts, column 'x': its values are string, not numbers")
        assert no_run_folder(tmp_path / "logs")
    args = ["--data", str(tmp_path / "parts"), "--target", "y", "--features", "z", "--num-val", "1"]
    run_dir = train.run([*args, "--max-epochs", "1", "--logdir", str(tmp_path / "logs")])
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    (tmp_path / "new").mkdir()
    pq.write_table(pa.table({"z": ["1.5"]}), tmp_path / "new" / "part-0.parquet")
    for output in ([], ["--output", str(tmp_path / "p.parquet")]):  # in memory, and streamed to a file
        out = cli("predict.py", "--checkpoint", checkpoint, "--data", str(tmp_path / "new"), *output)
        assert_one_line_error(out, "column 'z': its values are string, not numbers")


def test_predict_checks_its_destination_first_and_a_closed_pipe_ends_quietly(tmp_path):
    run_dir = train.run(["--logdir", str(tmp_path / "logs"), "--max-epochs", "1"])
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    rows = csv_file(tmp_path, "a,b\n" + "".join(f"{i},{-i}\n" for i in range(100_000)))
    out = cli("predict.py", "--checkpoint", checkpoint, "--data", rows, "--output", str(tmp_path / "no" / "p.csv"))
    assert_one_line_error(out, "the folder", "does not exist")
    # `linreg-predict ... | head -1`: the reader goes away after one line
    command_line = (
        f"{sys.executable} {ROOT / 'scripts' / 'predict.py'} --checkpoint {checkpoint} --data {rows} | head -1"
    )
    piped = subprocess.run(["bash", "-o", "pipefail", "-c", command_line], capture_output=True, text=True, timeout=300)
    assert piped.stdout == "a,b,prediction\n" and piped.stderr == ""  # no traceback, no Lightning banner
    assert piped.returncode == 128 + signal.SIGPIPE


def test_ctrl_c_before_training_is_one_line_and_leaves_no_folder(tmp_path):
    run = subprocess.Popen([sys.executable, "scripts/train.py", "--logdir", str(tmp_path / "logs")], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.3)  # importing torch and Lightning: seconds before training
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130
    assert err == "train.py: SIGINT before training began: nothing was trained or saved\n"
    assert no_run_folder(tmp_path / "logs")


def test_a_signal_while_the_run_reports_lets_the_report_finish(tmp_path, capsys, monkeypatch):
    # the signal arrives after the last update, while summary.json is written: the report completes, then the
    # command exits with the signal's status and says where the complete run is
    from linreg import runner
    from linreg.stop_signals import StopSignals

    signals = StopSignals()
    signals.hold()  # as StepCheckpoint does when training starts (no handler installed: this is a test)
    write_summary = runner.write_summary

    def write_then_signal(summary, run_dir):
        path = write_summary(summary, run_dir)
        signals.received = signal.SIGTERM  # what the handler records
        return path

    monkeypatch.setattr(runner, "write_summary", write_then_signal)
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--logdir", str(tmp_path), "--max-epochs", "1"], signals)
    assert exit_info.value.code == 143
    out = capsys.readouterr().out
    assert (
        out.splitlines()[-1]
        == f"SIGTERM: received after training ended; the run's report is complete in {tmp_path}/version_0"
    )
    assert "run folder:" in out and json.loads((tmp_path / "version_0" / "summary.json").read_text())["status"] == "ok"


def test_a_resume_on_a_changed_file_is_refused_and_a_moved_one_resumes(tmp_path, capsys):
    houses = tmp_path / "houses.csv"
    houses.write_text(HOUSES)
    first = train.run(["--data", str(houses), "--target", "price", "--max-epochs", "1", "--logdir", str(tmp_path)])
    checkpoint = str(first / "checkpoints" / "last.ckpt")
    with houses.open("a") as f:
        f.write("100,1,300000\n")  # a row more: another split, other data
    out = in_process(capsys, "--resume", checkpoint, "--max-epochs", "2", "--logdir", str(tmp_path / "again"))
    assert_one_line_error(out, "is not the file the checkpoint was trained on", "60 rows then, 61 now")
    assert no_run_folder(tmp_path / "again")
    houses.write_text(HOUSES)
    moved = houses.rename(tmp_path / "moved.csv")
    out = in_process(capsys, "--resume", checkpoint, "--max-epochs", "2")
    assert_one_line_error(out, f"--data {houses} is gone", "--data NEW_PATH")
    resumed = train.run(["--resume", checkpoint, "--max-epochs", "2", "--data", str(moved), "--logdir", str(tmp_path)])
    assert json.loads((resumed / "summary.json").read_text())["global_step"] == 2 * 5  # 48 rows, batch 10


def test_a_loss_that_keeps_growing_is_divergence_and_its_checkpoint_is_no_model(tmp_path, capsys):
    # 1000 features at batch 10: each minibatch curves ~100 times more than the full batch; at lr 0.03 the loss
    # grows without turning inf for epochs. It is caught, and the conditioning line gives the real bound.
    out = in_process(capsys, "--num-features", "1000", "--logdir", str(tmp_path))
    assert out.returncode == 1
    assert "at batch 10, lr above ~0.02 diverges" in out.stdout
    assert "the loss grew" in out.stderr.splitlines()[-1] and "e.g. --lr 0.003" in out.stderr
    summary = json.loads((tmp_path / "version_0" / "summary.json").read_text())
    assert summary["status"].startswith("diverged at step") and summary["checkpoint"] is None
    last = tmp_path / "version_0" / "checkpoints" / "last.ckpt"
    rows = csv_file(tmp_path, ",".join(f"x{i}" for i in range(1000)) + "\n" + ",".join(["0"] * 1000) + "\n")
    assert_one_line_error(
        cli("predict.py", "--checkpoint", str(last), "--data", rows), "diverged at step", "not a model"
    )


def test_summary_json_is_strict_json(tmp_path):
    # 5 examples of 10 features: X̃ᵀX̃ is singular, its condition number infinite; JSON has no Infinity
    run_dir = train.run(["--logdir", str(tmp_path), "--num-features", "10", "--num-examples", "5", "--num-val", "5"])
    text = (run_dir / "summary.json").read_text()

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    summary = json.loads(text, parse_constant=refuse)
    assert summary["condition_number"] is None and math.isfinite(summary["max_stable_lr"])


def test_a_symbolic_link_loop_is_named(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert_one_line_error(in_process(capsys, "--data", str(tmp_path / "a"), "--target", "y"), "loops back on itself")


def test_a_sweep_checks_every_value_before_the_first_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command("sweep").run(["--param", "batch-size", "--values", "10", "-5", "--logdir", str(tmp_path)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "sweep.py: error: --values -5: --batch-size must be positive, got -5"
    assert no_run_folder(tmp_path)  # not even the first run's


def test_a_wide_file_is_read_by_position_not_by_name(tmp_path):
    # 2000 columns x 5 rows: read whole, and each column where it belongs
    names = [f"c{i}" for i in range(2000)]
    rows = [[float(i * 10 + r) for i in range(2000)] for r in range(5)]
    path = csv_file(tmp_path, ",".join(names) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    X = data_files.read_columns(path, names[::-1])  # asked in another order than the file's
    assert torch.equal(X, torch.tensor(rows, dtype=torch.float64).flip(1))
