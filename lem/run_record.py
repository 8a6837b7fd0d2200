"""RunRecord: one run's results.json while the run moves through its phases, and every way the run can end.

Whatever happens inside `with RunRecord(...) as run:`, the job directory ends with a complete results.json: `ok`
(written by the harness), `failed` (any exception, the phase it happened in, as a one-line LemError) or
`interrupted` (SIGINT/SIGTERM/KeyboardInterrupt, re-raised as RunInterrupted), with the phase durations so far; and
everything registered with `closes()` is closed, last registered first.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import lem
from lem.config.findings import Finding
from lem.config.identity import config_hash
from lem.config.schema import ExperimentConfig
from lem.errors import LemError
from lem.interrupts import RunInterrupted
from lem.results.schema import RESULT_SCHEMA_VERSION, ErrorInfo, Result
from lem.results.writer import write_result

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class RunRecord:
    """The phase clock (seconds per phase, in order), the Result being built, and what must be closed at the end."""

    def __init__(self, config: ExperimentConfig, findings: list[Finding], job_dir: Path) -> None:
        self.job_dir = job_dir
        self.phase = "validate"
        self._phase_started = time.perf_counter()
        self._to_close: list[Closable] = []
        config_dict = dataclasses.asdict(config)
        self.result = Result(
            result_schema_version=RESULT_SCHEMA_VERSION,
            lem_version=lem.__version__,
            status="running",
            created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            config=config_dict,
            config_hash=config_hash(config),
            findings=[dataclasses.asdict(f) for f in findings],
            environment={"hostname": socket.gethostname()},
            phases_s={},
        )

    def _clock(self) -> float:
        """Record the current phase's duration so far; returns now."""
        now = time.perf_counter()
        self.result.phases_s[self.phase] = now - self._phase_started
        return now

    def enter(self, phase: str) -> None:
        """Record how long the current phase took (seconds) and move to `phase`."""
        self._phase_started = self._clock()
        self.phase = phase
        log.info("phase: %s", phase)

    def closes(self, resource: C) -> C:
        """Close `resource` when the run ends, however it ends."""
        self._to_close.append(resource)
        return resource

    def write(self, status: str) -> Path:
        """Set the final status and write results.json (atomically)."""
        self.result.status = status
        path = write_result(self.job_dir, self.result)
        log.info("%s: %s", status, path)
        return path

    def __enter__(self) -> RunRecord:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            if isinstance(exc, RunInterrupted | KeyboardInterrupt):
                raise self._interrupted(exc) from exc
            if isinstance(exc, Exception):
                raise self._failed(exc) from exc
            return False
        finally:
            self._close_all()

    def _interrupted(self, exc: BaseException) -> RunInterrupted:
        interrupted = exc if isinstance(exc, RunInterrupted) else RunInterrupted.from_keyboard()
        self._clock()
        self.result.error = ErrorInfo(
            phase=self.phase, type=interrupted.signal_name, message=f"{interrupted} during {self.phase}"
        )
        interrupted.phase, interrupted.results_path = self.phase, str(self.write("interrupted"))
        return interrupted

    def _failed(self, exc: Exception) -> LemError:
        self._clock()
        self.result.error = ErrorInfo(phase=self.phase, type=type(exc).__name__, message=str(exc))
        self.write("failed")
        if isinstance(exc, LemError):
            return exc
        return LemError(f"{self.phase} failed: {type(exc).__name__}: {exc}", phase=self.phase, exit_code=1)

    def _close_all(self) -> None:
        while self._to_close:
            resource = self._to_close.pop()
            try:
                resource.close()
            except Exception:  # closing must not hide how the run ended
                log.exception("closing %s failed", type(resource).__name__)
