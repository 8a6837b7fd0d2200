"""Every ending leaves a result: SIGINT and SIGTERM during a real measurement, and KeyboardInterrupt in a run."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import compose_config, result_files, start_lem

from lem.errors import LemError
from lem.interrupts import RunInterrupted
from lem.results.reader import read_job
from lem.run_record import RunRecord


class _Closable:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def _wait_for_phase(root: Path, phase: str, process: subprocess.Popen[str], timeout_s: float) -> None:
    """Until the job's lem.log says it entered `phase` (the run logs each phase as it enters it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "lem ended before it was interrupted"
        logs = list(root.glob("outputs/*/*/lem.log"))
        if logs and f"phase: {phase}" in logs[0].read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"lem did not reach phase {phase} in {timeout_s} s")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_measurement_writes_interrupted_result(
    signum: int, exit_code: int, tmp_path: Path, lem_cache: Path
) -> None:
    args = ["num_input_prompts=400", "max_output_tokens=64", "backend.batch_size=1", "warmup.enabled=false"]
    process = start_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    try:
        _wait_for_phase(tmp_path, "measure", process, timeout_s=120)
        time.sleep(0.3)  # well inside the window: 400 single-prompt batches take far longer
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == exit_code, stderr[-2000:]
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("lem:")]
    name = signal.Signals(signum).name
    assert len(lines) == 1 and lines[0].startswith(f"lem: interrupted by {name} during measure; results: "), lines
    (path,) = result_files(tmp_path)
    job = read_job(path.parent)
    assert job.status == "interrupted" and job.result is not None and job.result.error is not None
    assert job.result.error.phase == "measure" and job.result.error.type == name
    assert list(job.result.phases_s)[-1] == "measure" and job.result.phases_s["measure"] > 0
    assert job.result.metrics is None, "an interrupted window reports no figures"


def test_keyboard_interrupt_is_recorded_and_closes(tmp_path: Path) -> None:
    config = compose_config("num_input_prompts=2")
    resource = _Closable()
    with pytest.raises(RunInterrupted) as caught, RunRecord(config, [], tmp_path) as run:
        run.closes(resource)
        run.enter("load")
        raise KeyboardInterrupt
    assert caught.value.exit_code == 130 and caught.value.phase == "load"
    assert resource.closed == 1
    job = read_job(tmp_path)
    assert job.status == "interrupted" and job.result is not None and job.result.error is not None
    assert job.result.error.type == "SIGINT" and list(job.result.phases_s) == ["validate", "load"]


def test_failure_is_recorded_and_closes_even_when_closing_fails(tmp_path: Path) -> None:
    config = compose_config("num_input_prompts=2")

    class Broken(_Closable):
        def close(self) -> None:
            super().close()
            raise RuntimeError("close failed")

    first, broken = _Closable(), Broken()
    with pytest.raises(LemError, match=r"warmup failed: ValueError: bad"), RunRecord(config, [], tmp_path) as run:
        run.closes(first)
        run.closes(broken)
        run.enter("warmup")
        raise ValueError("bad")
    assert first.closed == broken.closed == 1, "every resource is closed, last first, whatever one of them raises"
    job = read_job(tmp_path)
    assert job.status == "failed" and job.result is not None and job.result.error is not None
    assert job.result.error.phase == "warmup"
