"""SIGINT and SIGTERM as an exception: a run ends the way a failure does, with a result and the backend closed.

`RunInterrupted` derives from BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it; the
harness records it as an `interrupted` result and re-raises, and `python -m lem` prints one line and exits 128 + the
signal number (130 for SIGINT, 143 for SIGTERM, what SLURM sends on a time-out or preemption).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """The process was asked to stop; `phase` and `job_dir` are filled in by the run it interrupted."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.phase: str | None = None
        self.results_path: str | None = None
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number."""
        return 128 + self.signum

    @classmethod
    def from_keyboard(cls) -> RunInterrupted:
        """A KeyboardInterrupt raised where lem's handler was not installed (e.g. an embedding program's)."""
        return cls(signal.SIGINT)


@contextmanager
def signals_raise() -> Iterator[None]:
    """While inside: the first SIGINT or SIGTERM raises RunInterrupted in the main thread; any further one is ignored
    so that the clean-up it triggers (results written, engines closed) is not cut short. Handlers restored after."""
    previous = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        for other in HANDLED_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise RunInterrupted(signum)

    for signum in HANDLED_SIGNALS:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
