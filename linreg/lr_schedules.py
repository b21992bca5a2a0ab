"""Learning-rate schedules for the book's SGD: `--lr-schedule constant|step|cosine|invscaling`.

    schedule = lr_schedule(optimizer, "cosine", total_updates=300)   # a torch LambdaLR, or None
    sgd_step(...); schedule.step()                                     # after every SGD update

The book's SGD keeps the rate fixed, so its iterates end in a noise floor around the least-squares
solution: each minibatch's gradient is noisy, and a fixed rate keeps taking steps of that noise's size. A
rate that decays removes the floor (docs/exercises.md, "A decaying learning rate"). With t the updates done:

| schedule | rate of update t + 1 |
|---|---|
| `constant` | lr: no scheduler at all, so the run is today's, bit for bit |
| `step` | lr · gamma^⌊t / step_size⌋ (step_size: one epoch's updates unless --lr-step-size says) |
| `cosine` | lr · (1 + cos(π t / T)) / 2, T the run's updates: from lr down to 0 at the last |
| `invscaling` | lr / (t + 1)^power_t, scikit-learn's SGDRegressor's, whose t counts examples, not updates |

Each is a `torch.optim.lr_scheduler.LambdaLR` of the optimizer (BookSGD or the concise path's torch SGD):
the factor is a closed form of t, and a checkpoint keeps t (`last_epoch`), so a resume continues the
schedule exactly. With manual optimization Lightning does not step it: the module does, after each update.
"""

import math
from functools import partial

SCHEDULES = ("constant", "step", "cosine", "invscaling")


def step_factor(t: int, step_size: int, gamma: float) -> float:
    return gamma ** (t // step_size)


def cosine_factor(t: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))


def invscaling_factor(t: int, power_t: float) -> float:
    return (t + 1.0) ** -power_t


def lr_schedule(
    optimizer,
    name: str,
    total_updates: int,
    updates_per_epoch: int,
    step_size: int | None = None,
    gamma: float = 0.5,
    power_t: float = 0.25,
) -> "torch.optim.lr_scheduler.LambdaLR | None":  # noqa: F821 (torch is imported when needed)
    """The schedule `name` on `optimizer` (a torch Optimizer) for a run of `total_updates` SGD updates;
    None for constant. (torch is imported here, not above: the command line reads SCHEDULES at start-up.)"""
    import torch

    if name == "constant":
        return None
    if name == "step":
        factor = partial(step_factor, step_size=step_size or updates_per_epoch, gamma=gamma)
    elif name == "cosine":
        factor = partial(cosine_factor, total=max(total_updates, 1))
    elif name == "invscaling":
        factor = partial(invscaling_factor, power_t=power_t)
    else:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
