"""Figures drawn with matplotlib from a run's own TensorBoard logs.

    scalars = read_scalars("lightning_logs/version_0")          # {tag: [(step, value), ...]}
    trajectory_figure(scalars, true_w=[2, -3.4], true_b=4.2).savefig("trajectories.png")
    loss_curves_figure({"lr=0.03": scalars["train/epoch_loss"]}, title="lr").savefig("loss.png")

Uses matplotlib's object API (`matplotlib.figure.Figure`), not pyplot: no global state, no display needed.
"""

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EPOCH_TAGS = {"train/epoch_loss", "val/loss", "val/mse", "val/r2"}  # written after each epoch's evaluation
MAX_COORDINATES = 6  # trajectories drawn for at most this many weights; the errors panel covers all


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a run's event files, as {tag: [(step, value), ...]} in logging order."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def trajectory_figure(
    scalars: dict[str, list[tuple[int, float]]],
    true_w: Sequence[float] | None = None,
    true_b: float | None = None,
    closed_w: Sequence[float] | None = None,
    closed_b: float | None = None,
) -> Figure:
    """Left: w_0, w_1, ..., b against SGD steps, with the true values (dashed) and the closed form
    (dotted). Right: ‖w - w_true‖ and |b - b_true| on a log scale, when the truth is known."""
    has_errors = "params/w_error" in scalars
    fig = Figure(figsize=(11 if has_errors else 6, 4), layout="constrained")
    axes = fig.subplots(1, 2 if has_errors else 1, squeeze=False)[0]
    weights = [f"w_{i}" for i in range(MAX_COORDINATES) if f"params/w_{i}" in scalars]

    def drawn(values: Sequence[float] | None) -> list[float | None]:  # one reference value per drawn weight
        return list(values)[: len(weights)] if values is not None else [None] * len(weights)

    names, truths, closed = [*weights, "b"], [*drawn(true_w), true_b], [*drawn(closed_w), closed_b]
    for name, truth, optimum in zip(names, truths, closed, strict=True):
        steps, values = zip(*scalars[f"params/{name}"], strict=True)
        (line,) = axes[0].plot(steps, values, label=name)
        if truth is not None:
            axes[0].axhline(truth, color=line.get_color(), linestyle="--", linewidth=0.8)
        if optimum is not None:
            axes[0].axhline(optimum, color=line.get_color(), linestyle=":", linewidth=1.2)
    axes[0].set(xlabel="SGD step", ylabel="value", title="parameters (dashed: true, dotted: closed form)")
    axes[0].legend(loc="best")
    if has_errors:
        floors = [None, None]  # the closed form's own errors: what no estimator beats on this data
        if None not in (true_w, true_b, closed_w, closed_b):
            floors = [math.dist(closed_w, true_w), abs(closed_b - true_b)]
        for (tag, label), floor in zip(
            (("params/w_error", "‖w − w_true‖"), ("params/b_error", "|b − b_true|")), floors, strict=True
        ):
            points = [(s, v) for s, v in scalars[tag] if v > 0 and math.isfinite(v)]
            if not points:  # an error that stays exactly 0 (b without a bias, on data whose b is 0): no line
                continue
            (line,) = axes[1].plot(*zip(*points, strict=True), label=label)
            if floor:
                axes[1].axhline(floor, color=line.get_color(), linestyle=":", linewidth=1.2)
        axes[1].set(xlabel="SGD step", yscale="log", title="errors in estimating w and b (dotted: closed form)")
        axes[1].legend(loc="best")
    return fig


def loss_curves_figure(curves: dict[str, list[tuple[int, float]]], title: str, tag: str = "train/epoch_loss") -> Figure:
    """One line per label, on a log scale: the whole-set loss after each epoch, or another scalar `tag`
    against SGD steps (params/w_error, ...); non-finite points (a diverged run) are left out and the label
    says so."""
    by_epoch = set(tag.split(" and ")) <= EPOCH_TAGS  # logged once an epoch: drawn against epochs
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for label, points in curves.items():
        if by_epoch:
            points = [(epoch, v) for epoch, (_, v) in enumerate(points, start=1)]
        finite = [(x, v) for x, v in points if math.isfinite(v) and v > 0]
        diverged = len(finite) < len(points)
        if finite:
            ax.plot(
                *zip(*finite, strict=True),
                marker="o" if by_epoch else None,
                label=label + (" (diverged)" if diverged else ""),
            )
        else:
            ax.plot([], [], label=label + " (diverged)")
    ylabel = "loss on the whole training set" if tag == "train/epoch_loss" else tag
    ax.set(xlabel="epoch" if by_epoch else "SGD step", ylabel=ylabel, yscale="log", title=title)
    if by_epoch:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")
    return fig
