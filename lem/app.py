"""The Hydra application: compose → validate → (dry run: print and stop) → run the harness.

Composition errors and lem's own errors become one line on stderr and a non-zero exit; set HYDRA_FULL_ERROR=1
(or LEM_DEBUG=1) to get the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lem.config.errors import describe_composition_error
from lem.config.machine import probe_machine
from lem.config.rules import errors, validate
from lem.config.schema import ExperimentConfig
from lem.config.store import CONFIG_DIR, register_configs
from lem.console import print_dry_run, print_findings
from lem.errors import LemError

#: Jobs of this process that failed, as (job directory, error); a job records its failure instead of raising, so that
#: a sweep runs its other jobs and the process exits non-zero at the end.
FAILED_JOBS: list[tuple[str, LemError]] = []
#: Hydra's default launcher, which runs the jobs in this process (and so sees FAILED_JOBS).
_IN_PROCESS_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def experiment(cfg: DictConfig) -> None:
    """One Hydra job: one experiment. Failures are recorded in FAILED_JOBS, and raised only from another process."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        _run_job(cfg, job_dir)
    except LemError as ex:
        FAILED_JOBS.append((str(job_dir), ex))
        print(f"lem: error: {ex}", file=sys.stderr)
        if HydraConfig.get().launcher._target_ != _IN_PROCESS_LAUNCHER:
            raise  # a job in another process (e.g. a SLURM job): the sweep learns of a failure only from its return


def _run_job(cfg: DictConfig, job_dir: Path) -> None:
    config: ExperimentConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    findings = validate(config, probe_machine())
    print_findings(findings)
    if config.dry_run:
        print_dry_run(config, findings)
        blocking = errors(findings)
        if blocking:
            raise LemError(f"{len(blocking)} error finding(s); first: {blocking[0].param}: {blocking[0].message}")
        return
    from lem.harness import run_experiment  # heavy imports only after validation

    run_experiment(config, findings, job_dir)


def main() -> None:
    """Console entry point (`python -m lem`)."""
    debug = bool(os.environ.get("HYDRA_FULL_ERROR") or os.environ.get("LEM_DEBUG"))
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us; we print them as one line
    register_configs()
    try:
        experiment()
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
