"""The lines `linreg-train` prints after training: the book's errors in w and b, SGD beside the closed form,
and, for a run that diverged or cannot run, one line that names the cause.

    print_results(summary, model, datamodule, args, solved=True)
    divergence_line(model, lr=50, stable_lr=1.83, run_dir=run_dir)    # the conditioning line's bound
"""

import math

import torch

from linreg.book_report import parameter_errors
from linreg.errors import DataError

SHOWN = 10  # weights printed in full up to this many; beyond, the first few and where the rest are


def rounded(values: list[float]) -> list[float]:
    return [round(v, 6) for v in values]


def weights(values: list[float]) -> str:
    """w as printed: every weight up to SHOWN of them, else the first five and a count."""
    if len(values) <= SHOWN:
        return str(rounded(values))
    first = ", ".join(str(v) for v in rounded(values[:5]))
    return f"[{first}, ... ({len(values)} weights: summary.json)]"


def print_results(summary: dict, model, datamodule, args, solved: bool) -> None:
    """The book's "error in estimating w and b", and SGD's parameters beside the closed form's."""
    errors = parameter_errors(model, datamodule)
    if errors is not None:
        w_error, b_error = errors
        many = len(w_error) > SHOWN
        shown = f"norm {w_error.norm():.6f}, largest {w_error.abs().max():.6f}" if many else rounded(w_error.tolist())
        print(f"error in estimating w: {shown}")
        print(f"error in estimating b: {b_error:.6f}")
    if not solved:  # streamed data (no training set in memory), or skipped by --closed-form
        return
    names = f" ({', '.join(datamodule.feature_names)})" if datamodule.feature_names else ""
    closed = summary["closed_form"]
    kind = " (MSE)" if args.implementation == "concise" else "" if args.loss == "squared" else f" ({args.loss})"
    excess = summary["excess_loss"]
    loss = summary["train_loss"]
    if loss is None and args.loss == "squared" and not args.weight_decay:  # streamed: not evaluated on every row
        loss = f"{closed['train_loss'] + excess:.6g} (the closed form's plus sgd's excess over it)"
    elif loss is not None:
        loss = f"{loss:.6g}"
    loss = "" if loss is None else f", loss{kind} {loss}"
    print(f"sgd:         w{names} {weights(summary['w'])}, b {summary['b']:.6f}{loss}")
    if args.weight_decay:  # the losses printed are the data's; the excess is in the loss trained on
        gap = f"(with the penalty, sgd is {excess:.3g} above it)"
    elif args.loss == "squared":
        gap = f"(sgd is {excess:.3g} above it)"
    else:  # the closed form minimizes the squared loss: still the reference, but not of this loss
        gap = f"(least squares, whatever --loss; in squared loss sgd is {excess:.3g} above it)"
    if not closed["excess_loss_sound"]:  # too few digits to measure SGD against: said, not printed as sound
        digits = f"~{closed['digits']:.0f} correct digits" if closed["digits"] >= 0.5 else "no correct digit"
        gap = f"({digits} only, estimated: sgd's {excess:.3g} above it is unreliable)"
    name = "closed form" if not args.weight_decay else f"ridge (λ={args.weight_decay:g})"  # with the same penalty
    print(f"{name}: w{names} {weights(closed['w'])}, b {closed['b']:.6f}, loss {closed['train_loss']:.6g} {gap}")


def divergence_line(model, lr: float, stable_lr: float | None, run_dir) -> str:
    """Why training stopped, and a learning rate to try: below `stable_lr`, the bound the conditioning line
    gave, where the closed form was solved."""
    if model.diverged_growth is None:
        what = f"the loss became inf or nan by step {model.diverged_at_step}"
    else:
        start, end = model.diverged_growth
        what = f"the loss grew {end / start:.3g}-fold, from {start:.3g} to {end:.3g}, by step {model.diverged_at_step}"
    suggestion = lr / 10
    if stable_lr is not None:
        suggestion = min(suggestion, stable_lr / 2)
    return (
        f"{what} with --lr {lr:g}: the steps overshoot and grow. Try a smaller learning rate, e.g. "
        f"--lr {float(f'{suggestion:.2g}'):g}. What was logged is in {run_dir}; its checkpoint holds the "
        "diverged parameters, which linreg-predict and --resume refuse"
    )


TRAINING_DTYPES = {"64": torch.float64, "16-true": torch.float16, "16": torch.float16, "bf16-true": torch.bfloat16}
TRAINING_DTYPES |= {"bf16": torch.bfloat16, "64-true": torch.float64}  # the rest train in float32


def largest_label_fits(datamodule, precision: str) -> None:
    """DataError when the labels' squared loss overflows the dtype the run trains in: from the first step
    the loss would be inf whatever the learning rate, and a smaller one would fail the same way."""
    dtype = TRAINING_DTYPES.get(precision, torch.float32)
    biggest, limit = datamodule.largest_label(), torch.finfo(dtype).max
    if biggest > math.sqrt(limit):  # (y_hat - y)² with y_hat ≈ 0 at the start
        target = getattr(datamodule, "hparams", {}).get("target")
        what = (
            f"the target '{target}' reaches" if target else "the labels y = Xw + b + noise (--true-w, --true-b) reach"
        )
        raise DataError(
            f"{what} {biggest:.3g}: the squared loss overflows {str(dtype).removeprefix('torch.')} "
            f"(largest {limit:.3g}) at --precision {precision}, whatever the learning rate; rescale them, or "
            "train at a wider --precision"
        )
