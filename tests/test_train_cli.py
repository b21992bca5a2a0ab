"""linreg-train (scripts/train.py) end to end: the book's result in the terminal, summary.json and TensorBoard."""

import json
import re
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from linreg.data import SyntheticRegressionDataModule
from linreg.figures import read_scalars
from tests.conftest import ROOT, TerminalRun, command

train = command("train")

TAGS = {"train/loss", "train/epoch_loss", "val/loss", "val/mse", "val/r2", "hp_metric"}
TAGS |= {"params/w_0", "params/w_1", "params/b", "params/w_error", "params/b_error"}


scalars = read_scalars


# Every line a default run may print on stdout (issue 13): the project's own. Its one progress bar goes to
# stderr, and only where stderr is a terminal.
ALLOWED_LINES = {
    "start": r"seed \d+, device \w+",
    "conditioning": r"conditioning: XᵀX/n has condition number [\d.e+]+, so lr above [\d.e+-]+ diverges",
    "epoch": r"epoch \d+, loss \d+\.\d{6}(, val loss \d+\.\d{6})?",
    "errors": r"error in estimating [wb]: .+",
    "sgd": r"sgd: +w.+, b .+, loss .+",
    "closed form": r"closed form: w.+, b .+, loss .+ \(sgd is .+ above it\)",
    "run folder": r"run folder: .+",
}


def kinds_of_lines(out: subprocess.CompletedProcess, allowed: dict[str, str] = ALLOWED_LINES) -> set[str]:
    """The kinds of `allowed` lines a run printed; fails on any other line, on a carriage return (a
    redraw), and on anything on stderr."""
    assert out.stderr == "" and "\r" not in out.stdout
    kinds = set()
    for line in out.stdout.splitlines():
        kind = next((k for k, pattern in allowed.items() if re.fullmatch(pattern, line)), None)
        assert kind is not None, f"a line that is not the project's: {line!r}"
        kinds.add(kind)
    return kinds


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The command exactly as a user runs it, in a fresh process."""
    cmd = [sys.executable, "scripts/train.py", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)


@pytest.fixture(scope="module")
def book_run(tmp_path_factory):
    """The default job: `python scripts/train.py` in a fresh process."""
    logdir = tmp_path_factory.mktemp("logs")
    out = run_cli("--logdir", str(logdir))
    return out, logdir / "version_0"


def test_default_run_prints_the_projects_lines_and_nothing_else(book_run):
    out, _ = book_run
    assert kinds_of_lines(out) == set(ALLOWED_LINES)  # each kind, and no banner, tip, warning or bar
    assert len(re.findall(r"^epoch \d", out.stdout, re.M)) == 3
    assert "Validation" not in out.stdout and "GPU available" not in out.stdout


def test_a_redirected_default_run_prints_the_readmes_lines_verbatim(tmp_path):
    # `linreg-train > run.log` (CI, a batch system): no bar and no redraw, and every line stands in the
    # README's quick start as it is printed, the run folder too (the default --logdir, in a fresh folder)
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py")], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stderr == "" and "\r" not in out.stdout
    readme = (ROOT / "README.md").read_text().splitlines()
    assert [line for line in out.stdout.splitlines() if line not in readme] == []
    assert len(out.stdout.splitlines()) == 10


def test_at_a_terminal_the_bar_goes_to_stderr_and_the_report_stays_clean(tmp_path):
    run = TerminalRun(["--logdir", str(tmp_path)])  # stderr is a terminal: the bar is drawn there
    out = subprocess.CompletedProcess(run.args, run.wait(300), run.stdout.read().decode(), "")
    assert kinds_of_lines(out) == set(ALLOWED_LINES)
    assert re.search(r"Epoch 2: 100%\|.*\| 100/100", run.shown.decode())  # the bar counts updates, to the end
    assert run.stderr_lines() == []  # nothing but the bar


def test_a_csv_run_is_quiet_too(tmp_path):
    houses = tmp_path / "houses.csv"
    subprocess.run([sys.executable, "scripts/make_houses.py", str(houses)], cwd=ROOT, check=True, capture_output=True)
    # 400 training rows: 40 updates an epoch, fewer batches than Lightning's logging interval
    out = run_cli("--data", str(houses), "--target", "price", "--max-epochs", "2", "--logdir", str(tmp_path / "logs"))
    assert kinds_of_lines(out) == set(ALLOWED_LINES) - {"errors"}  # no true w and b to compare with


def test_a_streaming_run_is_quiet_too(tmp_path):
    # a background thread makes the data, and a window's lookup runs torch.searchsorted: nothing may leak
    args = ["--streaming", "--num-examples", "5000", "--num-features", "20", "--batch-size", "100"]
    out = run_cli(*args, "--max-epochs", "2", "--logdir", str(tmp_path / "logs"))
    streaming = {  # what it prints instead of the training set's loss and the closed form
        "streaming": r"streaming: 5000 examples, never stored; .+ held-out stream of 1000 examples, .+",
        "held-out epoch": r"epoch \d+, val loss \d+\.\d{6}",
    }
    kinds = kinds_of_lines(out, ALLOWED_LINES | streaming)
    assert kinds == set(ALLOWED_LINES) - {"conditioning", "epoch", "sgd", "closed form"} | set(streaming)


def test_default_run_converges_like_the_book(book_run):
    out, run_dir = book_run
    stdout = out.stdout
    assert re.search(r"^seed 0, device cpu$", stdout, re.M)
    losses = [float(v) for v in re.findall(r"^epoch \d, loss (\d+\.\d{6}), val loss \d+\.\d{6}$", stdout, re.M)]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert re.search(r"^error in estimating w: \[.+\]$", stdout, re.M)
    assert re.search(r"^error in estimating b: -?\d+\.\d{6}$", stdout, re.M)
    assert stdout.rstrip().endswith(f"run folder: {run_dir}")

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train_loss"] <= 1e-4 and summary["val_loss"] <= 1e-4
    assert summary["true_w"] == [2.0, -3.4] and summary["true_b"] == 4.2
    for w, true_w in zip(summary["w"], summary["true_w"], strict=True):
        assert abs(w - true_w) <= 5e-3
    assert abs(summary["b"] - summary["true_b"]) <= 5e-3
    assert summary["epochs"] == 3 and summary["global_step"] == 300 and summary["device"] == "cpu"
    assert 0 < summary["train_seconds"] < summary["fit_seconds"] and summary["run_dir"] == str(run_dir)
    assert summary["hparams"]["lr"] == 0.03 and summary["hparams"]["batch_size"] == 10
    assert summary["train_loss"] == pytest.approx(losses[-1], abs=1e-6)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_default_run_writes_the_tensorboard_tags(book_run):
    _, run_dir = book_run
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert "params/trajectories" in events.Tags()["images"]  # the figure logged at the end of fit
    logged = scalars(run_dir)
    assert logged.keys() >= TAGS
    assert len(logged["train/loss"]) >= 20  # enough points to draw a curve
    assert [step for step, _ in logged["train/epoch_loss"]] == [100, 200, 300]  # after each epoch's updates
    assert [step for step, _ in logged["params/w_0"]] == list(range(0, 301, 10))  # from the start, once a step
    assert logged["params/w_error"][-1][1] < 5e-3
    # hp_metric is the held-out loss of the final (w, b), by hand on the regenerated held-out set: the
    # training loss (~6 % lower here) would not pass
    summary = json.loads((run_dir / "summary.json").read_text())
    _, _, X_val, y_val = (t.double() for t in SyntheticRegressionDataModule(seed=0).make_data(torch.float32))
    w = torch.tensor(summary["w"], dtype=torch.float64).reshape(-1, 1)
    val_loss = float(((X_val @ w + summary["b"] - y_val) ** 2 / 2).mean())
    assert logged["hp_metric"][-1][1] == pytest.approx(val_loss, rel=1e-4)
    assert [step for step, _ in logged["hp_metric"]] == [100, 200, 300]  # no placeholder -1 at step 0


def test_hparams_tab_has_every_flag_and_the_final_metrics(book_run):
    _, run_dir = book_run
    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    flags = {action.dest for action in train.build_parser().flags.values()} - {"help", "version"}
    assert set(start.session_start_info.hparams) == flags
    assert start.session_start_info.hparams["lr"].number_value == 0.03
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    names = {info.name.tag for info in experiment.metric_infos}
    assert names == {"hparams/train_loss", "hparams/val_loss", "hparams/w_error", "hparams/excess_loss"}
    summary = json.loads((run_dir / "summary.json").read_text())
    logged = scalars(run_dir)
    assert logged["hparams/train_loss"] == [(300, pytest.approx(summary["train_loss"]))]  # at the last step
    assert logged["hparams/val_loss"] == [(300, pytest.approx(summary["val_loss"]))]
    w_error = ((summary["w"][0] - 2.0) ** 2 + (summary["w"][1] + 3.4) ** 2) ** 0.5
    assert logged["hparams/w_error"] == [(300, pytest.approx(w_error))]
    assert logged["hparams/excess_loss"] == [(300, pytest.approx(summary["excess_loss"]))]


def test_max_steps_mid_epoch_still_reports_final_losses(tmp_path, capsys):
    run_dir = train.run(["--logdir", str(tmp_path), "--max-steps", "150", "--seed", "3"])
    # a line of its own: at the start of a line, or after the carriage return that clears the progress bar
    assert re.search(r"(^|\r)step 150, loss \d+\.\d{6}, val loss \d+\.\d{6}$", capsys.readouterr().out, re.M)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 150 and summary["epochs"] == 1.5
    logged = scalars(run_dir)
    assert logged["train/epoch_loss"][-1][0] == 150  # evaluated at the last step, not only at epoch ends
    assert summary["train_loss"] == pytest.approx(logged["train/epoch_loss"][-1][1])


def test_num_features_and_no_held_out_set(tmp_path):
    run_dir = train.run(["--logdir", str(tmp_path), "--num-features", "4", "--num-val", "0", "--max-epochs", "1"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["true_w"]) == len(summary["w"]) == 4
    assert summary["val_loss"] is None
    logged = scalars(run_dir)
    assert "params/w_3" in logged and "val/loss" not in logged
    assert logged["hp_metric"][-1][1] == pytest.approx(summary["train_loss"])


def test_runs_get_their_own_version_folders(tmp_path):
    first = train.run(["--logdir", str(tmp_path), "--max-steps", "2"])
    second = train.run(["--logdir", str(tmp_path), "--max-steps", "2"])
    assert (first.name, second.name) == ("version_0", "version_1")
    assert (first / "summary.json").is_file() and (second / "summary.json").is_file()


def test_closed_form_policy(tmp_path, capsys):
    wide = ["--num-features", "400", "--num-examples", "500", "--num-val", "0", "--max-epochs", "1"]
    wide += ["--batch-size", "500"]  # auto: one step of 500 examples costs less than solving, skipped
    run_dir = train.run(["--logdir", str(tmp_path), *wide])
    out = capsys.readouterr().out
    assert "closed form skipped: with 400 features it costs more than 1 epoch of training at batch 500" in out
    assert "closed form:" not in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["closed_form"] is None and summary["excess_loss"] is None
    run_dir = train.run(["--logdir", str(tmp_path), *wide, "--closed-form", "always"])
    assert "closed form:" in capsys.readouterr().out
    assert json.loads((run_dir / "summary.json").read_text())["closed_form"]["train_loss"] > 0
    run_dir = train.run(["--logdir", str(tmp_path), "--max-epochs", "1", "--closed-form", "never"])
    assert "closed form" not in capsys.readouterr().out
    assert "reference/closed_form_loss" not in scalars(run_dir)
