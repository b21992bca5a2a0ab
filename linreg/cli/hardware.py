"""The flags that go to Lightning's Trainer, checked before Lightning is imported and before any run folder
is made: one line naming the flag and the values it takes, never Lightning's traceback.

    p.add_argument("--precision", type=precision, default="32-true")
    accelerator_available("--accelerator", "mps")        # UsageError on a machine without MPS

What only Lightning can judge (a strategy's name, more devices than the machine has) is judged by building
the Trainer before the run folder is claimed (linreg.runner.build).
"""

import argparse
import importlib.util

from linreg.errors import UsageError

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
PRECISIONS = ("32-true", "64-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed", "32", "64", "16", "bf16")
SEEDS = 2**32  # numpy's seeds, which Lightning's seed_everything sets too: 0 to 2³² - 1


def one_of(values: tuple[str, ...]):
    """An argparse type: one of `values`, or an error that lists them."""

    def parse(text: str) -> str:
        if text not in values:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(values)}")
        return text

    parse.__name__ = "value"
    return parse


accelerator = one_of(ACCELERATORS)
precision = one_of(PRECISIONS)


def devices(text: str) -> str:
    """--devices: auto, a positive number of devices, or a list of device indices like 0,1."""
    if text == "auto" or (text.isdigit() and int(text) > 0):
        return text
    parts = text.rstrip(",").split(",")
    if "," in text and all(part.strip().isdigit() for part in parts):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not auto, a positive number, or a list of device indices like 0,1")


def seed(text: str) -> int:
    """--seed: a whole number from 0 to 2³² - 1."""
    value = int(text)  # ValueError: argparse says "invalid seed value"
    if not 0 <= value < SEEDS:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and {SEEDS - 1}")
    return value


def accelerator_available(flag: str, name: str, error: type[Exception] = UsageError) -> None:
    """An accelerator this machine does not have: one line, with torch but not Lightning."""
    if name in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise error(f"{flag} {name}: no CUDA GPU is available on this machine")
    elif name == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise error(f"{flag} mps: Apple's MPS is not available on this machine")
    elif name == "tpu" and importlib.util.find_spec("torch_xla") is None:
        raise error(f"{flag} tpu: no TPU support here (torch_xla is not installed)")
