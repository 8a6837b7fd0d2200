"""The Hydra application: compose → validate → (dry run: print and stop) → run the harness.

A dry run of a sweep meant for SLURM submits nothing: `main()` runs its jobs here with Hydra's basic launcher, each
validated against what the SLURM launcher requests per job (`lem.config.overrides.dry_run_here`); the real jobs
validate again on their nodes before anything loads.

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
from lem.config.machine import TARGET_ENV, MachineFacts, probe_machine
from lem.config.overrides import as_typed, dry_run_here
from lem.config.rules import validate
from lem.config.schema import ExperimentConfig
from lem.config.store import CONFIG_DIR, register_configs
from lem.console import print_dry_run, print_findings
from lem.engines import EngineKeeper, planned_key, reuse_applies
from lem.errors import LemError
from lem.interrupts import RunInterrupted, signals_raise

#: Jobs of this process that failed, as (job directory, error); a job records its failure instead of raising, so that
#: a sweep runs its other jobs and the process exits non-zero at the end.
FAILED_JOBS: list[tuple[str, LemError]] = []
#: The engine a finished job leaves for the next job of this process (backend.reuse); closed when `main()` ends.
ENGINES = EngineKeeper()
#: The planned engine key (`lem.engines.planned_key`) the previous dry-run job of this process left, as ENGINES keeps
#: the engine of real runs; None where it left none (reuse off, or a job meant for SLURM).
_PLANNED_KEY: str | None = None
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


def _planned_engine(config: ExperimentConfig, facts: MachineFacts) -> str:
    """The dry run's engine line: the planned key, and whether the job would load or take over the previous job's."""
    global _PLANNED_KEY
    key = planned_key(config)
    previous = _PLANNED_KEY
    in_process = facts.target is None and os.getpid() == _MAIN_PID
    _PLANNED_KEY = key if in_process and reuse_applies(config) else None
    if facts.target is not None:
        return f"{key}; loads: each SLURM job of hydra/launcher={facts.target.launcher} loads its own"
    if not in_process:
        return f"{key}; loads: this launcher runs each job in a process of its own"
    if not reuse_applies(config):
        return f"{key}; loads: reuse is off (backend.reuse=false, or not the offline scenario)"
    if previous == key:
        return f"{key}; reuses the previous job's engine"
    return f"{key}; loads" + ("" if previous is None else " (the previous job's engine differs)")


def _run_job(cfg: DictConfig, job_dir: Path) -> None:
    config: ExperimentConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    facts = probe_machine()
    findings = validate(config, facts)
    print_findings(findings, include_info=config.dry_run)
    if config.dry_run:
        engine = None if errors(findings) else _planned_engine(config, facts)
        print_dry_run(config, findings, facts.target, engine)
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
    sys.argv[1:], target = dry_run_here(sys.argv[1:])
    if target is not None:
        os.environ[TARGET_ENV] = target.to_json()
        print(
            f"lem: dry run for hydra/launcher={target.launcher}: nothing is submitted; every job is checked here "
            f"against its request ({target.request})",
            file=sys.stderr,
        )
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
