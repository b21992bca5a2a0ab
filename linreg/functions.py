"""The book's pieces (D2L §3.2, "Linear Regression Implementation from Scratch") as plain functions.

Everything here is torch only: no Lightning, no state. The LightningModule in `linreg/model.py` and the
oracle test in `tests/` both call these, so there is one definition of the algorithm.

    >>> from linreg.functions import synthetic_data, linreg, squared_loss, sgd
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


def sgd(params: Iterable[torch.Tensor], lr: float, batch_size: int) -> None:
    """Minibatch stochastic gradient descent, in place: param -= lr * param.grad / batch_size.

    The gradients come from `l.sum().backward()`, so dividing by `batch_size` turns the summed gradient
    into the mean over the minibatch. Zeroes each gradient afterwards, ready for the next backward.
    """
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()
