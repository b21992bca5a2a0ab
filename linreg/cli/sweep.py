"""One training run per value of one flag, side by side: the book's exercises as commands.

    linreg-sweep --param lr --values 0.003 0.03 0.3 3
    linreg-sweep --param batch-size --values 1 10 100 --max-epochs 5     # any linreg-train flag
    linreg-sweep --param no-shuffle --values no yes --sort-by-label       # an on/off flag
    linreg-sweep --param loss --values squared absolute huber --outliers 0.05 --curve params/w_error
    tensorboard --logdir lightning_logs                                   # the runs side by side

Each run is `linreg-train` itself (linreg.cli.train's `main`), logged under one sweep folder
`<logdir>/sweep_<param>_<N>/<param>=<value>/version_0/`. Prints a table, writes `results.csv` (value,
final train loss, val loss, w error, b error, excess loss over the closed form, fit seconds) and `loss_curves.png`
(the loss after each epoch, or the scalar `--curve` against SGD steps, one line per value, log scale) into
the sweep folder, and its path last.
A run that diverges stays in the table as "diverged"; bad flags end the sweep with train.py's one line.
"""

import csv
import json
import math
from pathlib import Path

from linreg.cli import USER_ERRORS, Parser, fail, program, quieted, stopped_in_one_line
from linreg.cli import train as train_cli
from linreg.errors import StorageError
from linreg.run_folders import claim
from linreg.stop_signals import StopSignals

COLUMNS = ["value", "train_loss", "val_loss", "w_error", "b_error", "excess_loss", "fit_seconds"]


def result_row(value: str, summary: dict) -> dict:
    row = dict.fromkeys(COLUMNS, "diverged") | {"value": value, "fit_seconds": summary["fit_seconds"]}
    if summary["status"] != "ok":
        return row
    # streamed data has no training loss and no closed form; CSV data no true parameters: those stay empty
    row |= {"train_loss": summary["train_loss"], "val_loss": summary["val_loss"], "excess_loss": summary["excess_loss"]}
    if summary["true_w"] is not None:
        row["w_error"] = math.dist(summary["w"], summary["true_w"])
        row["b_error"] = abs(summary["b"] - summary["true_b"])
    else:
        row["w_error"] = row["b_error"] = None
    return row


def run(argv: list[str] | None = None, signals: StopSignals | None = None) -> Path:
    """The sweep on `argv`: its folder, or SystemExit with the status of bad input, or of the run a signal
    stopped (`signals`: main()'s handlers, which stop the run in progress at an update boundary)."""
    p = Parser(prog=program("sweep.py"), description=__doc__.split("\n\n")[0])
    p.add_argument("--param", required=True, help="a train.py flag without its dashes: lr, batch-size, ...")
    p.add_argument("--values", required=True, nargs="+", help="its values; yes/no for an on/off flag")
    p.add_argument("--logdir", default="lightning_logs", help="the sweep folder goes under it")
    p.add_argument(
        "--curve", nargs="+", default=["train/epoch_loss"], help="the scalars drawn per value (train/epoch_loss)"
    )
    args, train_args = p.parse_known_args(argv)
    flag = f"--{args.param}"
    actions = train_cli.build_parser().flags
    if flag not in actions or flag in ("--logdir", "--help"):
        p.error(f"--param {args.param}: linreg-train has no flag {flag}")
    on_off = actions[flag].nargs == 0  # store_true flags: --no-shuffle, --sort-by-label
    if on_off and not set(args.values) <= {"yes", "no"}:
        p.error(f"{flag} is an on/off flag: give --values yes and/or no")

    def run_args(value: str) -> list[str]:
        return [*train_args, *(([flag] if value == "yes" else []) if on_off else [flag, value])]

    for value in args.values:  # every run's flags, before the first run: a bad value is found at once
        try:
            train_cli.checked([*run_args(value), "--logdir", args.logdir])
        except USER_ERRORS as e:
            fail(program("sweep.py"), f"--values {value}: {e}")

    from linreg.figures import loss_curves_figure, read_scalars  # matplotlib: after the flags are checked

    try:  # atomic: sweeps started together get folders of their own
        folder = claim(args.logdir, prefix=f"sweep_{args.param}_")
    except StorageError as e:
        fail(program("sweep.py"), e, status=1)
    rows, curves = [], {}
    for value in args.values:
        run_logdir = folder / f"{args.param}={value}"
        try:
            run_dir = train_cli.run([*run_args(value), "--logdir", str(run_logdir)], signals)
        except SystemExit as e:
            if e.code != 1:  # 1: diverged, kept in the table; anything else is bad input for every run
                raise
            run_dir = run_logdir / "version_0"
        rows.append(result_row(value, json.loads((run_dir / "summary.json").read_text())))
        scalars = read_scalars(run_dir)
        for tag in args.curve:  # one line per value, or per value and tag
            curves[f"{args.param}={value}" + (f", {tag}" if len(args.curve) > 1 else "")] = scalars.get(tag, [])

    with (folder / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    figure = loss_curves_figure(curves, title=f"sweep over --{args.param}", tag=" and ".join(args.curve))
    figure.savefig(folder / "loss_curves.png", dpi=80)

    print(f"\n{args.param:>14} " + " ".join(f"{c:>15}" for c in COLUMNS[1:]))
    for row in rows:
        cells = [
            f"{v:>15.4g}" if isinstance(v, float) else f"{'-' if v is None else v:>15}" for v in list(row.values())[1:]
        ]
        print(f"{row['value']:>14} " + " ".join(cells))
    print(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    """The console script `linreg-sweep`. While it runs it owns SIGINT and SIGTERM, as linreg-train does: a
    signal stops the run in progress at an update boundary, saved to resume, and ends the sweep."""
    signals = StopSignals()
    with stopped_in_one_line(program("sweep.py")), signals.installed(), quieted(program("sweep.py")):
        run(argv, signals)


if __name__ == "__main__":
    main()
