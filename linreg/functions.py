"""The book's pieces (D2L §3.2, "Linear Regression Implementation from Scratch") as plain functions.

Everything here is torch only: no Lightning, no state. The LightningModule in `linreg/model.py` and the
oracle test in `tests/` both call these, so there is one definition of the algorithm.

    >>> from linreg.functions import synthetic_data, linreg, squared_loss, sgd

Beside the book's squared_loss, the losses its exercises ask about (§3.4 ex. 8, §3.5 ex. 2), written the
same way: per example, not reduced. `linreg-train --loss absolute|huber` trains with them.
"""

from collections.abc import Iterable, Sequence

import torch


def synthetic_data(
    w: torch.Tensor | Sequence[float],
    b: float,
    num_examples: int,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate y = Xw + b + noise, as the book does: X ~ N(0, 1), noise ~ N(0, noise²).

    Returns X of shape (num_examples, len(w)) and y of shape (num_examples, 1). `generator` makes the
    draw independent of torch's global RNG; `dtype` defaults to torch's default dtype.
    """
    w = torch.as_tensor(w, dtype=dtype or torch.get_default_dtype())
    X = torch.normal(0, 1, (num_examples, len(w)), generator=generator, dtype=w.dtype)  # (n, num_inputs)
    y = torch.matmul(X, w) + b  # (n,)
    y += torch.normal(0, noise, y.shape, generator=generator, dtype=w.dtype)
    return X, y.reshape((-1, 1))


def linreg(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The linear regression model: X @ w + b, with b broadcast over the batch.

    X: (batch_size, num_inputs), w: (num_inputs, 1), b: (1,) -> y_hat: (batch_size, 1).
    """
    return torch.matmul(X, w) + b


def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared loss per example, (y_hat - y)² / 2, not reduced: shape (batch_size, 1).

    `y` is reshaped to `y_hat`'s shape as in the book, so a label vector of shape (batch_size,) works too.
    """
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def absolute_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Absolute loss per example, |y_hat - y|, not reduced: shape (batch_size, 1).

    Its gradient is ±1 per example (times x for w) however large the error: a gross outlier pulls on the
    parameters no harder than any other example, where squared_loss lets it pull in proportion to its error.
    """
    return (y_hat - y.reshape(y_hat.shape)).abs()


def huber_loss(y_hat: torch.Tensor, y: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber's loss per example, not reduced: shape (batch_size, 1).

    (y_hat - y)² / 2 for errors up to `delta` (squared_loss, smooth near the optimum) and
    delta · (|y_hat - y| - delta / 2) beyond (absolute_loss, scaled by delta: outliers pull with at most
    delta); the two pieces meet with the same value and slope at |y_hat - y| = delta.
    """
    error = (y_hat - y.reshape(y_hat.shape)).abs()
    return torch.where(error <= delta, error**2 / 2, delta * (error - delta / 2))


def l2_penalty(w: torch.Tensor) -> torch.Tensor:
    """D2L §3.7's weight decay penalty, ‖w‖² / 2: added, times lambd, to each example's loss."""
    return torch.sum(w.pow(2)) / 2


def sgd(params: Iterable[torch.Tensor], lr: float, batch_size: int) -> None:
    """Minibatch stochastic gradient descent, in place: param -= lr * param.grad / batch_size.

    The gradients come from `l.sum().backward()`, so dividing by `batch_size` turns the summed gradient
    into the mean over the minibatch. Zeroes each gradient afterwards, ready for the next backward.
    """
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()
