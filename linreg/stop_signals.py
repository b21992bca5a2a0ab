"""SIGINT and SIGTERM while a command runs: at once before training, at an update boundary during it.

    signals = StopSignals()
    with signals.installed():          # a command's main() only: library code installs no handler
        run(argv, signals)             # calls signals.check() between steps; StepCheckpoint signals.hold()

- Before training starts (imports, reading a file, building the Trainer) there is nothing to save: a
  signal is noted, and `check()`, which the command calls between those steps, raises `Interrupted`; the
  command ends in one line with 128 + the signal's number. Not raised from the handler itself: raised
  inside an import, a C extension's initialization can swallow it (the run went on) or the interpreter can
  abort on its way out.
- From `hold()` on (training, then the report), the first signal is recorded: training stops at the next
  update boundary and saves a checkpoint there (linreg.fault_tolerance.StepCheckpoint); after the last
  update, the report is finished before the command exits. A second Ctrl-C exits at once.

Standard library only: the command line installs it before torch and Lightning are imported.
"""

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Interrupted(BaseException):
    """A stop signal before training began (a BaseException, like KeyboardInterrupt: no `except Exception`
    catches it on its way out)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """The handlers of SIGINT and SIGTERM (main thread only, where Python allows them)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None  # the first signal's number, once holding
        self.holding = False
        self.previous: dict[int, Any] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopSignals"]:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in self.SIGNALS}
        try:
            yield self
        finally:
            for s, handler in self.previous.items():
                signal.signal(s, handler)
            self.previous = {}

    def check(self) -> None:
        """Before training: a signal noted so far ends the command here."""
        if self.received is not None and not self.holding:
            raise Interrupted(self.received)

    def hold(self) -> None:
        """Training begins: from now on a signal asks for a stop at an update boundary. The handlers are set
        again: Lightning sets its own for SIGTERM while it fits."""
        self.check()
        self.holding = True
        if self.previous:
            for s in self.SIGNALS:
                signal.signal(s, self.handle)

    def handle(self, signum: int, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            os._exit(128 + signum)  # a second Ctrl-C: at once (what the last checkpoints hold is kept)
        self.received = self.received or signum
