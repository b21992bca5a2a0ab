"""Lightning's bookkeeping around each hook call, made cheap where it buys this project nothing.

    trainer = L.Trainer(profiler=NoProfiler())
    class LinearRegressionScratch(FastHookName, L.LightningModule): ...

Every SGD update goes through `manual_backward` and `optimizer.step`, and Lightning calls three hooks
around them (`on_before_backward`, `on_after_backward`, `on_before_optimizer_step`), each on every
callback and on the module. For each call it formats a profiler label from the callback's `state_key`,
opens `trainer.profiler.profile(label)` and sets a name on the module before and after
(`lightning_internals.HOOK_NAME_ATTRIBUTE`). That bookkeeping, not the hooks, cost several times the
hooks' own work per update (docs/performance.md); these two cut it:

- `NoProfiler`: Lightning's default `PassThroughProfiler` records nothing but still opens a generator-based
  context manager per call; this one hands back one shared `nullcontext`.
- `FastHookName` (a mixin of the LightningModule): that name is set with `object.__setattr__`, not
  through `nn.Module.__setattr__`, which checks for parameters, buffers and submodules first.

Neither changes what a hook does or when it runs; `tests/test_book_report.py` checks that each hook
still runs, and `python scripts/benchmark.py` measures the result. Profile with
`L.Trainer(profiler="simple")` as usual: it replaces `NoProfiler`.
"""

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler

from linreg.lightning_internals import HOOK_NAME_ATTRIBUTE


class NoProfiler(PassThroughProfiler):
    """Profiles nothing, as Lightning's default, at a fraction of its cost per hook call."""

    _context = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._context


class FastHookName:
    """Sets the name Lightning gives the module around every hook call without nn.Module's checks."""

    def __setattr__(self, name: str, value) -> None:
        if name == HOOK_NAME_ATTRIBUTE:  # a str or None: never a parameter, buffer or submodule
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)
