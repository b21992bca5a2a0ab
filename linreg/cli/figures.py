"""Regenerate the README's figures (docs/figures/*.png) from fresh runs, and print their tables.

    linreg-figures                 # about a minute on 2 cores (or: python scripts/figures.py)

Each figure is what a README command produces: the default run's trajectories (`linreg-train`,
drawn from its own event file) and the loss curves of the exercise sweeps (`linreg-sweep`).
Runs go to a temporary folder; only the PNGs are kept.
"""

import json
import shutil
import tempfile
from pathlib import Path

from linreg.cli import Parser, program, quieted, sweep, train

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"  # the repository's, next to README.md

# figure name: the sweep's arguments, as written in the README
EXERCISES = {
    "init_std": ["--param", "init-std", "--values", "0", "0.01", "1000"],
    "lr": ["--param", "lr", "--values", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3"],
    "batch_size": ["--param", "batch-size", "--values", "1", "10", "100", "1000"],
    "num_examples": ["--param", "num-examples", "--values", "1000", "1005", "1009"],
    "shuffle": ["--param", "no-shuffle", "--values", "no", "yes", "--sort-by-label", "--noise", "1", "--lr", "0.1"],
    "loss": ["--param", "loss", "--values", "squared", "absolute", "huber", "--outliers", "0.05", "--max-epochs", "10",
             "--curve", "params/w_error"],
    # D2L §3.7's experiment: 20 examples of 200 features, every true weight 0.01, b 0.05
    "weight_decay": ["--param", "weight-decay", "--values", "0", "3", "--num-examples", "20", "--num-val", "100",
                     "--num-features", "200", "--true-w", "0.01", "--true-b", "0.05", "--batch-size", "5",
                     "--lr", "0.003", "--max-epochs", "100", "--curve", "train/epoch_loss", "val/loss"],
    "lr_schedule": ["--param", "lr-schedule", "--values", "constant", "cosine", "invscaling", "--max-epochs", "30",
                    "--curve", "train/excess_loss"],
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog=program("figures.py"), description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=FIGURES, help="where the PNGs go (default: docs/figures)")
    out = p.parse_args(argv).out
    from linreg.figures import read_scalars, trajectory_figure

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as logdir, quieted(program("figures.py")):
        run_dir = train.run(["--logdir", logdir])
        summary = json.loads((run_dir / "summary.json").read_text())
        closed = summary["closed_form"]
        figure = trajectory_figure(
            read_scalars(run_dir), summary["true_w"], summary["true_b"], closed["w"], closed["b"]
        )
        figure.savefig(out / "trajectories.png", dpi=80)
        for name, args in EXERCISES.items():
            folder = sweep.run([*args, "--logdir", logdir])
            shutil.copy(folder / "loss_curves.png", out / f"{name}.png")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
