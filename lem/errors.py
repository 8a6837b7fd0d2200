"""lem's own error type: its message is one line that names the key, the value and the fix."""

from __future__ import annotations


class LemError(Exception):
    """A user-facing failure; `phase` is the measurement phase it happened in, `exit_code` the process exit code."""

    def __init__(self, message: str, *, phase: str = "validate", exit_code: int = 2) -> None:
        super().__init__(" ".join(message.split()))
        self.phase = phase
        self.exit_code = exit_code
