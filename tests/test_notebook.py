"""notebooks/linear_regression_scratch.ipynb runs top to bottom in a fresh kernel, and its saved outputs are
what it prints today. Refresh them after a change: `jupyter execute --inplace notebooks/linear_regression_scratch.ipynb`
(from the repository, in the dev environment)."""

import copy
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
torch = pytest.importorskip("torch")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "linear_regression_scratch.ipynb"


def printed(notebook) -> list[str]:
    """The text each code cell printed, in order: one string a cell, however the kernel cut it into outputs
    (lines printed close together may come as one output or several)."""
    return ["".join(o.text for o in c.outputs if o.output_type == "stream") for c in notebook.cells
            if c.cell_type == "code"]  # fmt: skip


def test_the_notebook_runs_in_a_fresh_kernel_and_its_saved_outputs_are_current(tmp_path):
    saved = nbformat.read(NOTEBOOK, as_version=4)
    fresh = copy.deepcopy(saved)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # a new kernel, in a folder of its own (the Trainer's lightning_logs go there); an error in any cell raises
    nbclient.NotebookClient(
        fresh, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "".join(printed(fresh))
    for line in (
        "epoch 1, loss",
        "epoch 3, loss",
        "error in estimating w",
        "closed form: w",
        "lr 3: loss after 3 epochs nan",
    ):
        assert line in text
    images = [o for c in fresh.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the scatter plot and the TensorBoard curves
    assert not any(o.output_type == "stream" and o.name == "stderr" for c in fresh.cells if c.cell_type == "code"
                   for o in c.outputs)  # fmt: skip
    # the numbers are seeded: the saved outputs must be today's (torch's RNG may differ in other versions)
    if saved.metadata.get("linreg", {}).get("outputs_made_with_torch") == torch.__version__:
        assert printed(saved) == printed(fresh), "stale outputs: refresh them (this file's docstring)"
