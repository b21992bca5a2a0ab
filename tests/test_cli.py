"""The commands answer at once: help, version and bad input come before Lightning is imported.

Checked by what a fresh interpreter has imported when the command is done, not by a timed test (the
seconds are in `linreg-benchmark --whole-process`). A command that imported Lightning first would pass
every other test and still make each typo cost seconds: these catch it.
"""

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from linreg import __version__

PROBE = """
import sys
from linreg.cli import {name}
try:
    {name}.main({argv!r})
except SystemExit as e:
    print("exit", e.code)
print("loaded", *sorted(m for m in ("torch", "lightning") if m in sys.modules))
"""


def probe(name: str, *argv: str, cwd=None) -> tuple[int, str, str]:
    """(exit status, stdout without the last line, the heavy modules imported) of a command in a fresh process."""
    code = PROBE.format(name=name, argv=list(argv))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    *lines, status, loaded = out.stdout.strip().splitlines()
    return int(status.split()[1]), "\n".join(lines) + out.stderr, loaded.removeprefix("loaded").strip()


@pytest.mark.parametrize(
    "name, argv",
    [
        ("train", ["--help"]),
        ("train", ["--version"]),
        ("predict", ["--help"]),
        ("sweep", ["--help"]),
        ("figures", ["--help"]),
    ],
)
def test_help_and_version_load_neither_torch_nor_lightning(name, argv):
    status, text, loaded = probe(name, *argv)
    assert status == 0 and loaded == ""
    assert (f"linreg {__version__}" in text) if argv == ["--version"] else ("usage:" in text)


@pytest.mark.parametrize(
    "name, argv, says",
    [
        ("train", ["--batch-size", "0"], "--batch-size must be positive, got 0"),
        ("train", ["--lr", "nan"], "argument --lr"),
        ("train", ["--max-epochs", "three"], "argument --max-epochs: invalid int value"),
        ("train", ["--data", "missing.csv", "--target", "y"], "--data missing.csv: no such file"),
        ("train", ["--data", "/dev/null", "--target", "y"], "--data /dev/null: not a file"),  # a folder is parts
        ("train", ["--resume", "missing.ckpt"], "--resume missing.ckpt: no such file"),
        ("predict", ["--checkpoint", "missing.ckpt", "--data", "x.csv"], "--checkpoint missing.ckpt: no such file"),
        ("sweep", ["--param", "nope", "--values", "1"], "linreg-train has no flag --nope"),
    ],
)
def test_bad_flags_and_files_answer_before_torch_is_imported(name, argv, says, tmp_path):
    status, text, loaded = probe(name, *argv, cwd=tmp_path)
    assert status == 2 and loaded == ""
    assert says in text and "Traceback" not in text and len(text.strip().splitlines()) == 1


def test_a_file_that_is_no_checkpoint_needs_torch_to_tell_but_not_lightning(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    status, text, loaded = probe("train", "--resume", "notes.ckpt", cwd=tmp_path)
    assert status == 2 and loaded == "torch"
    assert "notes.ckpt: not a checkpoint that torch can read" in text


def test_console_scripts_name_each_commands_main():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name.startswith("linreg-")}
    commands = ["train", "predict", "sweep", "benchmark", "figures"]
    assert scripts == {f"linreg-{name}": f"linreg.cli.{name}:main" for name in commands}


def test_a_data_file_neither_csv_nor_parquet_is_one_line_before_torch(tmp_path):
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 4)
    status, text, loaded = probe("train", "--data", "data.bin", "--target", "y", cwd=tmp_path)
    says = "neither a CSV file nor a Parquet file (binary data, or text that is not UTF-8)"
    assert status == 2 and loaded == "" and says in text and len(text.strip().splitlines()) == 1


def process_state() -> tuple:
    """What the commands change while they run: warnings' filters and printer, and the logging they let through."""
    import logging
    import warnings

    levels = tuple(logging.getLogger(name).level for name in ("lightning.pytorch", "lightning.fabric"))
    return tuple(warnings.filters), warnings.showwarning, logging.root.manager.disable, levels


def test_the_python_api_leaves_warnings_and_logging_alone(tmp_path):
    # a notebook: build and run a Trainer as linreg-train does, through the library
    import lightning  # noqa: F401  importing Lightning sets its own log level: that is Lightning's doing

    from linreg.cli import train
    from linreg.runner import build

    before = process_state()
    build(train.build_parser().parse_args(["--logdir", str(tmp_path)]))
    train.run(["--logdir", str(tmp_path), "--max-epochs", "1"])
    assert process_state() == before


def test_a_commands_main_puts_everything_back(tmp_path):
    # quiet while it runs (tests/test_train_cli.py checks the terminal of a real run), as before afterwards
    import lightning  # noqa: F401

    from linreg.cli import train

    before = process_state()
    train.main(["--logdir", str(tmp_path), "--max-epochs", "1"])
    assert process_state() == before


def test_an_interrupted_command_says_what_its_interruption_means(capsys):
    # linreg-predict is no training run: its Ctrl-C line says what it stopped, not "before training began"
    import signal

    from linreg.cli import stopped_in_one_line
    from linreg.stop_signals import Interrupted

    with pytest.raises(SystemExit) as exit_info, stopped_in_one_line("predict.py", stopped="stopped the predictions"):
        raise Interrupted(signal.SIGTERM)
    assert exit_info.value.code == 143
    assert capsys.readouterr().err == "predict.py: SIGTERM stopped the predictions\n"
