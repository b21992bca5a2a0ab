"""The README's Python example runs as printed, in a fresh folder: the plain core in a stock Trainer."""

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_the_readmes_python_example_runs(tmp_path):
    (code,) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "lightning_logs").is_dir()  # a stock Trainer's logs, where the user ran it
