"""Lightning's bookkeeping around each hook call, made cheap where it buys this project nothing.

    trainer = L.Trainer(profiler=NoProfiler())
    class LinearRegressionScratch(FastHookName, L.LightningModule): ...

Every SGD update goes through `manual_backward` and `optimizer.step`, and Lightning calls three hooks
around them (`on_before_backward`, `on_after_backward`, `on_before_optimizer_step`), each on every
callback and on the module. For each call it formats a profiler label from the callback's `state_key`,
opens `trainer.profiler.profile(label)` and sets the module's `_current_fx_name` before and after. On
2 CPU cores that bookkeeping, not the hooks, took ~55 µs per hook (~165 µs per update, a third of the
book's whole step at batch 10); these two take it to ~16 µs:

- `NoProfiler`: Lightning's default `PassThroughProfiler` records nothing but still opens a generator-based
  context manager per call (~3 µs); this one hands back one shared `nullcontext` (~0.1 µs).
- `FastHookName` (a mixin of the LightningModule): `_current_fx_name` is set with `object.__setattr__`,
  not through `nn.Module.__setattr__`, which checks for parameters, buffers and submodules (~4 µs).

Neither changes what a hook does or when it runs; `tests/test_callbacks.py` checks that each hook
still runs, and `python scripts/benchmark.py` measures the result. Profile with
`L.Trainer(profiler="simple")` as usual: it replaces `NoProfiler`.
"""

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler


class NoProfiler(PassThroughProfiler):
    """Profiles nothing, as Lightning's default, at a fraction of its cost per hook call."""

    _context = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._context


class FastHookName:
    """Sets Lightning's `_current_fx_name` (before and after every hook call) without nn.Module's checks."""

    def __setattr__(self, name: str, value) -> None:
        if name == "_current_fx_name":  # a str or None: never a parameter, buffer or submodule
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)
