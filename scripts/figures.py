"""Regenerate the README's figures (docs/figures/*.png) from fresh runs, and print their tables.

    python scripts/figures.py                 # about a minute on 2 cores

Each figure is what a README command produces: the default run's trajectories (`scripts/train.py`,
drawn from its own event file) and the loss curves of the exercise sweeps (`scripts/sweep.py`).
Runs go to a temporary folder; only the PNGs are kept.
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import sweep  # scripts/ is not a package: sweep.py and train.py sit beside this file
import train

from linreg.figures import read_scalars, trajectory_figure

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"

# figure name: the sweep's arguments, as written in the README
EXERCISES = {
    "init_std": ["--param", "init-std", "--values", "0", "0.01", "1000"],
    "lr": ["--param", "lr", "--values", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3"],
    "batch_size": ["--param", "batch-size", "--values", "1", "10", "100", "1000"],
    "num_examples": ["--param", "num-examples", "--values", "1000", "1005", "1009"],
    "shuffle": ["--param", "no-shuffle", "--values", "no", "yes", "--sort-by-label", "--noise", "1", "--lr", "0.1"],
}


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as logdir:
        run_dir = train.main(["--logdir", logdir])
        summary = json.loads((run_dir / "summary.json").read_text())
        closed = summary["closed_form"]
        figure = trajectory_figure(
            read_scalars(run_dir), summary["true_w"], summary["true_b"], closed["w"], closed["b"]
        )
        figure.savefig(FIGURES / "trajectories.png", dpi=80)
        for name, args in EXERCISES.items():
            folder = sweep.main([*args, "--logdir", logdir])
            shutil.copy(folder / "loss_curves.png", FIGURES / f"{name}.png")
    print(f"figures written to {FIGURES}")


if __name__ == "__main__":
    main()
