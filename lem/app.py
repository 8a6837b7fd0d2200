"""The Hydra application: compose → validate → (dry run: print and stop) → run the harness.

Composition errors and lem's own errors become one line on stderr and a non-zero exit; set HYDRA_FULL_ERROR=1
(or LEM_DEBUG=1) to get the traceback instead. SIGINT and SIGTERM end the run with an `interrupted` result, one
line, and exit code 130 or 143.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lem.config.errors import describe_composition_error
from lem.config.findings import errors
from lem.config.machine import probe_machine
from lem.config.overrides import as_typed
from lem.config.rules import validate
from lem.config.schema import ExperimentConfig
from lem.config.store import CONFIG_DIR, register_configs
from lem.console import print_dry_run, print_findings
from lem.engines import EngineKeeper
from lem.errors import LemError
from lem.interrupts import RunInterrupted, signals_raise

#: Jobs of this process that failed, as (job directory, error); a job records its failure instead of raising, so that
#: a sweep runs its other jobs and the process exits non-zero at the end.
FAILED_JOBS: list[tuple[str, LemError]] = []
#: The engine a finished job leaves for the next job of this process (backend.reuse); closed when `main()` ends.
ENGINES = EngineKeeper()
#: The process that ran `main()`. A job running in it (Hydra's basic launcher) records failures in FAILED_JOBS; a job
#: in another process (a SLURM or joblib worker) raises, since its launcher learns of failures only from that.
_MAIN_PID: int | None = None


def settled_by_sweeper(job_dirs: Iterable[Path]) -> None:
    """A sweeper that reports its jobs' outcomes itself (lem_search: a failed trial is part of a search, not a failed
    process) takes those jobs out of FAILED_JOBS, so that they do not set the exit code."""
    settled = {Path(d).resolve() for d in job_dirs}
    FAILED_JOBS[:] = [(d, e) for d, e in FAILED_JOBS if Path(d).resolve() not in settled]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def experiment(cfg: DictConfig) -> None:
    """One Hydra job: one experiment. Failures are recorded in FAILED_JOBS, and raised only from another process."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        _run_job(cfg, job_dir)
    except LemError as ex:
        ENGINES.close()  # a failed job leaves no engine behind
        FAILED_JOBS.append((str(job_dir), ex))
        print(f"lem: error: {ex}", file=sys.stderr)
        if os.getpid() != _MAIN_PID:
            raise


def _run_job(cfg: DictConfig, job_dir: Path) -> None:
    config: ExperimentConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    findings = validate(config, probe_machine())
    print_findings(findings, include_info=config.dry_run)
    if config.dry_run:
        print_dry_run(config, findings)
        blocking = errors(findings)
        if blocking:
            raise LemError(f"{len(blocking)} error finding(s); first: {blocking[0].param}: {blocking[0].message}")
        return
    from lem.logs import route_third_party

    route_third_party()
    from lem.harness import run_experiment  # heavy imports only after validation

    run_experiment(config, findings, job_dir, ENGINES if os.getpid() == _MAIN_PID else None)


def _interrupted_line(ex: RunInterrupted) -> str:
    where = f" during {ex.phase}; results: {ex.results_path}" if ex.phase is not None else ""
    return f"lem: {ex}{where}"


def main() -> None:
    """Console entry point (`python -m lem`)."""
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    debug = bool(os.environ.get("HYDRA_FULL_ERROR") or os.environ.get("LEM_DEBUG"))
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us; we print them as one line
    register_configs()
    sys.argv[1:] = as_typed(sys.argv[1:])  # escape-hatch keys as users type them, without Hydra's `+`
    try:
        with signals_raise():
            try:
                experiment()
            finally:  # after the last job, and on every failure or interrupt of the sweep
                ENGINES.close()
    except RunInterrupted as ex:
        if debug:
            raise
        print(_interrupted_line(ex), file=sys.stderr)
        sys.exit(ex.exit_code)
    except LemError as ex:  # raised outside a job, e.g. by the campaign sweeper
        if debug:
            raise
        print(f"lem: error: {ex}", file=sys.stderr)
        sys.exit(ex.exit_code)
    except Exception as ex:
        if debug:
            raise
        print(f"lem: error: {describe_composition_error(ex)}", file=sys.stderr)
        sys.exit(2)
    if FAILED_JOBS:
        sys.exit(max(error.exit_code for _, error in FAILED_JOBS))
