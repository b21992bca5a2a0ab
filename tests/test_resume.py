"""--resume: continuing from a checkpoint gives the run that never stopped."""

import json

from tests.conftest import load_script

train = load_script("train")


def run(tmp_path, *args: str) -> tuple[dict, object]:
    run_dir = train.main(["--logdir", str(tmp_path), *args])
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
    resumed, _ = run(tmp_path, "--max-epochs", "3", "--checkpoint-every-n-steps", "150", "--resume", checkpoint)
    assert_same_run(resumed, straight)


def test_the_end_of_a_max_steps_run_resumes_at_the_next_epoch(tmp_path):
    # Lightning records an epoch stopped by max_steps as finished: resuming starts the next one.
    _, first = run(tmp_path, "--max-steps", "150")
    resumed, _ = run(tmp_path, "--max-epochs", "3", "--resume", str(first / "checkpoints" / "last.ckpt"))
    assert resumed["global_step"] == 250  # 150, then the third epoch's 100: the second epoch's last 50 skipped
    assert all(abs(v) < 10 for v in [*resumed["w"], resumed["b"]]) and resumed["train_loss"] < 1e-3


def test_a_checkpoint_at_an_epochs_last_step_resumes_exactly(tmp_path):
    # every 100 steps = every epoch's last step: saved at the epoch's end, where Lightning resumes correctly
    straight, _ = run(tmp_path, "--max-epochs", "3")
    _, first = run(tmp_path, "--max-epochs", "2", "--checkpoint-every-n-steps", "100")
    checkpoint = str(first / "checkpoints" / "last-step.ckpt")
    resumed, _ = run(tmp_path, "--max-epochs", "3", "--checkpoint-every-n-steps", "100", "--resume", checkpoint)
    assert_same_run(resumed, straight)
