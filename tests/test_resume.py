"""--resume: continuing from a checkpoint gives the run that never stopped."""

import json
from pathlib import Path

import pytest
import torch

from linreg.data_files import read_columns
from linreg.file_data import FileRegressionDataModule
from tests.conftest import command

train = command("train")


def run(tmp_path, *args: str) -> tuple[dict, object]:
    run_dir = train.run(["--logdir", str(tmp_path), *args])
    return json.loads((run_dir / "summary.json").read_text()), run_dir


def assert_same_run(a: dict, b: dict, tol: float = 1e-7) -> None:
    assert a["global_step"] == b["global_step"]
    for x, y in zip([*a["w"], a["b"]], [*b["w"], b["b"]], strict=True):
        assert abs(x - y) <= tol


def test_three_epochs_equal_two_then_resumed_to_three(tmp_path):
    straight, _ = run(tmp_path, "--max-epochs", "3")
    _, first = run(tmp_path, "--max-epochs", "2")
    checkpoint = first / "checkpoints" / "last.ckpt"
    before = checkpoint.read_bytes()
    resumed, second = run(tmp_path, "--max-epochs", "3", "--resume", str(checkpoint))
    assert_same_run(resumed, straight)
    assert resumed["epochs"] == 3.0
    assert second != first and checkpoint.read_bytes() == before  # a new run folder; the old one untouched


def test_a_checkpoint_taken_inside_an_epoch_resumes_exactly(tmp_path):
    straight, _ = run(tmp_path, "--max-epochs", "3")
    # saved inside step 150, the middle of the second epoch: the sampler skips the 50 batches already done
    _, first = run(tmp_path, "--max-epochs", "3", "--max-steps", "150", "--checkpoint-every-n-steps", "150")
    checkpoint = str(first / "checkpoints" / "last-step.ckpt")
    resumed, _ = run(tmp_path, "--max-steps", "-1", "--resume", checkpoint)  # the rest of the 3 epochs
    assert_same_run(resumed, straight)


def test_the_end_of_a_max_steps_run_resumes_at_the_next_epoch(tmp_path):
    # Lightning records an epoch stopped by max_steps as finished: resuming starts the next one.
    _, first = run(tmp_path, "--max-steps", "150")
    resumed, _ = run(tmp_path, "--max-steps", "-1", "--resume", str(first / "checkpoints" / "last.ckpt"))
    assert resumed["global_step"] == 250  # 150, then the third epoch's 100: the second epoch's last 50 skipped
    assert all(abs(v) < 10 for v in [*resumed["w"], resumed["b"]]) and resumed["train_loss"] < 1e-3


def test_a_checkpoint_at_an_epochs_last_step_resumes_exactly(tmp_path):
    # every 100 steps = every epoch's last step: saved at the epoch's end, where Lightning resumes correctly
    straight, _ = run(tmp_path, "--max-epochs", "3")
    _, first = run(tmp_path, "--max-epochs", "2", "--checkpoint-every-n-steps", "100")
    checkpoint = str(first / "checkpoints" / "last-step.ckpt")
    resumed, _ = run(tmp_path, "--max-epochs", "3", "--checkpoint-every-n-steps", "100", "--resume", checkpoint)
    assert_same_run(resumed, straight)


def test_a_chain_of_resumes_through_a_short_epoch_trains_every_batch_once(tmp_path):
    # A --max-steps run ends mid-epoch 2; Lightning records that epoch as finished, so resuming from its
    # last.ckpt trains epoch 3 in full. Interrupting that resumed run mid-epoch and resuming again must end
    # where the uninterrupted resume does: the position comes from the sampler's own state, not global_step.
    _, first = run(tmp_path, "--max-steps", "150")
    last = str(first / "checkpoints" / "last.ckpt")
    straight, _ = run(tmp_path, "--resume", last, "--max-steps", "-1")
    assert straight["global_step"] == 250
    _, second = run(tmp_path, "--resume", last, "--max-steps", "180", "--checkpoint-every-n-steps", "30")
    resumed, _ = run(tmp_path, "--resume", str(second / "checkpoints" / "last-step.ckpt"), "--max-steps", "-1")
    assert_same_run(resumed, straight, tol=0.0)


def test_a_streaming_run_resumes_exactly_mid_epoch(tmp_path):
    stream = ["--streaming", "--num-examples", "2000", "--num-val", "100", "--max-epochs", "2"]
    straight, _ = run(tmp_path, *stream)
    _, first = run(tmp_path, *stream, "--max-steps", "130", "--checkpoint-every-n-steps", "130")
    resumed, _ = run(tmp_path, "--max-steps", "-1", "--resume", str(first / "checkpoints" / "last-step.ckpt"))
    assert straight["global_step"] == 400
    assert_same_run(resumed, straight, tol=0.0)


def houses(tmp_path) -> str:
    """200 rows of price = 3000·area − 1500·age + 50000, plus a little noise."""
    area, age = [50 + (7 * i) % 190 for i in range(200)], [(13 * i) % 60 for i in range(200)]
    rows = [
        f"{a},{g},{3000 * a - 1500 * g + 50000 + i % 7 * 100}" for i, (a, g) in enumerate(zip(area, age, strict=True))
    ]
    path = tmp_path / "houses.csv"
    path.write_text("area,age,price\n" + "\n".join(rows) + "\n")
    return str(path)


def test_a_csv_run_resumes_exactly_mid_epoch(tmp_path):
    csv_run = ["--data", houses(tmp_path), "--target", "price", "--max-epochs", "3", "--batch-size", "16"]
    straight, _ = run(tmp_path, *csv_run)  # 160 training rows: 10 steps an epoch
    _, first = run(tmp_path, *csv_run, "--max-steps", "14", "--checkpoint-every-n-steps", "7")
    resumed, _ = run(tmp_path, "--max-steps", "-1", "--resume", str(first / "checkpoints" / "last-step.ckpt"))
    assert straight["global_step"] == 30
    assert_same_run(resumed, straight, tol=0.0)


def test_a_csv_resume_standardizes_with_the_checkpoints_statistics(tmp_path):
    path = houses(tmp_path)
    saved = FileRegressionDataModule(path, "price", seed=0)
    other = FileRegressionDataModule(path, "price", seed=1)  # another split: other statistics
    other.setup("fit")
    assert not torch.equal(other.mean, saved.mean)
    other.load_state_dict(saved.state_dict())  # what Lightning does after setup when resuming
    raw = read_columns(path, ["area", "age"])[other.train_rows]  # this run's training rows, as read
    expected = ((raw - saved.mean) / saved.std).float()
    assert torch.equal(other.train_set.tensors[0], expected)


def test_a_csv_resume_with_other_features_is_refused_in_one_line(tmp_path, capsys):
    path = houses(tmp_path)
    _, first = run(tmp_path, "--data", path, "--target", "price", "--max-epochs", "1")
    with pytest.raises(SystemExit) as exit_info:
        train.run(
            [
                "--logdir",
                str(tmp_path / "again"),
                "--data",
                path,
                "--target",
                "price",
                "--features",
                "area",
                "--resume",
                str(first / "checkpoints" / "last.ckpt"),
            ]
        )
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    # the checkpoint's run used every column but the target: its settings say so before the data is read
    assert line.startswith("train.py: error:")
    assert "--features area contradicts the checkpoint's run (--features not given)" in line
    assert not (tmp_path / "again").exists()  # refused before any run folder was made


def test_a_csv_whose_columns_changed_since_the_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    path = houses(tmp_path)
    _, first = run(tmp_path, "--data", path, "--target", "price", "--max-epochs", "1")
    text = Path(path).read_text()
    Path(path).write_text(text.replace("area,age,price", "area,rooms,price", 1))  # same flags, other columns
    with pytest.raises(SystemExit) as exit_info:
        train.run(
            [
                "--resume",
                str(first / "checkpoints" / "last.ckpt"),
                "--max-epochs",
                "2",
                "--logdir",
                str(tmp_path / "again"),
            ]
        )
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "to predict 'price' from area, age; this run asks for 'price' from area, rooms" in line


def test_a_run_on_another_loss_and_outliers_resumes_with_them(tmp_path):
    settings = ["--loss", "huber", "--huber-delta", "0.5", "--outliers", "0.05", "--max-epochs", "2"]
    straight, _ = run(tmp_path, *settings)
    _, first = run(tmp_path, *settings, "--max-steps", "130", "--checkpoint-every-n-steps", "130")
    # --resume alone: the loss, its delta and the outliers come from the checkpoint's run
    resumed, _ = run(tmp_path, "--max-steps", "-1", "--resume", str(first / "checkpoints" / "last-step.ckpt"))
    assert_same_run(resumed, straight, tol=0.0)
    assert {k: resumed["hparams"][k] for k in ("loss", "huber_delta", "outliers")} == {
        "loss": "huber",
        "huber_delta": 0.5,
        "outliers": 0.05,
    }


def test_resuming_a_finished_run_alone_says_so_in_one_line_before_any_folder(tmp_path, capsys):
    # the README's `--resume .../last.ckpt` of a run that reached its --max-epochs: nothing left to train
    _, first = run(tmp_path / "logs")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--resume", str(first / "checkpoints" / "last.ckpt")])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("train.py: error: the checkpoint's run has finished 3 epochs (300 steps)")
    assert line.endswith("--max-epochs N (N > 3)")
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["version_0"]  # no empty version_1


def test_a_new_max_epochs_lifts_the_max_steps_the_run_stopped_at(tmp_path, capsys):
    # --max-steps 150 stops in the middle of epoch 2; `--max-epochs 4` then means: go on to the end of epoch 4
    straight, _ = run(tmp_path, "--max-epochs", "4")
    _, first = run(tmp_path, "--max-steps", "150", "--checkpoint-every-n-steps", "150")
    capsys.readouterr()
    resumed, _ = run(tmp_path, "--max-epochs", "4", "--resume", str(first / "checkpoints" / "last-step.ckpt"))
    assert (
        "resuming with --max-steps -1: the checkpoint's run stopped at its --max-steps 150" in capsys.readouterr().out
    )
    assert resumed["global_step"] == 400 and resumed["hparams"]["max_steps"] == -1
    assert (resumed["w"], resumed["b"]) == (straight["w"], straight["b"])  # bit for bit


def test_resuming_a_max_steps_run_without_a_new_limit_says_how_to_go_further(tmp_path, capsys):
    _, first = run(tmp_path, "--max-steps", "150", "--checkpoint-every-n-steps", "150")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.run(["--resume", str(first / "checkpoints" / "last-step.ckpt")])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "has taken 150 steps, its --max-steps 150: nothing is left to train" in line
