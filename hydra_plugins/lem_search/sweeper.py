"""The `lem_search` Hydra sweeper: a multi-objective Optuna study over a search space in Hydra's sweep syntax.

Each trial is one job whose folder is named by its trial number; the study lives in SQLite in the sweep directory,
so running the same command again continues it (lem.search.study). Before anything runs, the fixed part of the config
is validated (an error finding there rejects the search); each trial is validated before it is launched, and one with
an error finding is not launched but recorded failed, in the study and in its results.json. A trial that fails is
recorded failed and the search goes on. Objective values come from each trial's results.json, read through
lem.results' reader. The search exits 0 when at least one trial completed.

Hydra finds this module by scanning the `hydra_plugins` namespace package; importing it registers
`hydra/sweeper=lem_search`. lem itself never imports it.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan (Plugins.instance(), e.g. in a submitit job on a
# SLURM node) executes this module before it is in sys.modules, where dataclasses cannot resolve string annotations.
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from lem import app
from lem.campaign.jobs import LemSweeper
from lem.config.machine import MachineFacts
from lem.config.rules import Finding, errors
from lem.config.schema import ExperimentConfig
from lem.errors import LemError
from lem.results.reader import HYDRA_FOLDER, read_job
from lem.run_record import RunRecord
from lem.search.objectives import check_objectives, read_outcome
from lem.search.space import SearchSpace, parse_space
from lem.search.study import SearchStudy, open_study, search_lock
from lem.search.summary import print_search_plan, print_search_summary, print_trial

log = logging.getLogger("lem.search")  # lem's logger tree: its warnings reach the console (lem/logs.py)


def _default_objectives() -> dict[str, str]:
    return {"j_per_output_token": "minimize", "output_tokens_per_s": "maximize"}


@dataclass
class SearchSweeperConf:
    """hydra/sweeper=lem_search; `params` is the search space in Hydra's sweep syntax.

    `objectives` maps a result figure (lem.search.objectives.OBJECTIVES) to minimize or maximize. `n_trials` is the
    number of trials the study should have run (completed or failed) when this run ends; `n_jobs` trials are asked
    for and launched together (for parallel launchers). `sampler`: tpe, nsga2 or random, seeded by `seed`.
    """

    _target_: str = "hydra_plugins.lem_search.sweeper.SearchSweeper"
    params: dict[str, str] | None = None
    objectives: dict[str, str] = field(default_factory=_default_objectives)
    n_trials: int = 20
    n_jobs: int = 1
    sampler: str = "tpe"
    seed: int | None = 0
    study_name: str = "lem_search"


ConfigStore.instance().store(group="hydra/sweeper", name="lem_search", node=SearchSweeperConf, provider="lem")


@dataclass(frozen=True)
class _Trial:
    number: int
    params: dict[str, Any]
    overrides: list[str]
    config: ExperimentConfig
    job_dir: Path
    findings: tuple[Finding, ...]


class SearchSweeper(LemSweeper):
    """Ask Optuna for trials, launch each as a lem job, tell it the objective values read from results.json."""

    def __init__(
        self,
        params: dict[str, str] | None = None,
        objectives: dict[str, str] | None = None,
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: str = "tpe",
        seed: int | None = 0,
        study_name: str = "lem_search",
    ) -> None:
        super().__init__(params)
        self.objectives = dict(objectives or _default_objectives())
        self.n_trials, self.n_jobs, self.sampler, self.seed = n_trials, n_jobs, sampler, seed
        self.study_name = study_name

    def _check_fixed(self, space: SearchSpace, facts: MachineFacts) -> None:
        """Reject the search before anything runs when the part every trial shares has an error finding."""
        _, _, findings = self.compose_job([*space.fixed, "hydra.sweep.subdir=fixed"], facts)  # launches nothing
        searched = {key.lstrip("+~") for key in space.distributions}
        blocking = [f for f in errors(findings) if f.param not in searched]
        if blocking:
            raise LemError(
                f"search rejected before running: {len(blocking)} error finding(s) in the settings every trial "
                f"shares; first: {blocking[0].param}: {blocking[0].message}"
            )

    def sweep(self, arguments: list[str]) -> Any:
        """Validate, open (or continue) the study, run trials until it has n_trials, print the front."""
        assert self.config is not None and self.hydra_context is not None
        if self.n_trials < 1 or self.n_jobs < 1:
            raise LemError(f"hydra.sweeper.n_trials={self.n_trials}, n_jobs={self.n_jobs}: both must be at least 1")
        check_objectives(self.objectives)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        space = parse_space(parser.parse_overrides([*self.params_as_overrides(), *arguments]))
        facts = self.machine_facts()
        self._check_fixed(space, facts)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        if bool(self.config.dry_run):
            print_search_plan(self.study_name, sweep_dir, None, space.distributions, self.objectives, self.n_trials)
            return []
        optuna.logging.disable_default_handler()  # its records go through logging's handlers: lem.log, not the console
        optuna.logging.enable_propagation()
        record = {"objectives": self.objectives, "space": space.declared, "fixed": space.fixed}
        returns: list[Any] = []
        with search_lock(sweep_dir):
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            search = open_study(sweep_dir, self.study_name, self.objectives, record, self.sampler, self.seed)
            repaired = search.repair()
            to_run = max(0, self.n_trials - sum(search.counts()))
            print_search_plan(
                self.study_name, sweep_dir, search.counts(), space.distributions, self.objectives, to_run, repaired
            )
            while (left := self.n_trials - sum(search.counts())) > 0:
                trials = [self._trial(search, space, facts) for _ in range(min(self.n_jobs, left))]
                returns.append(self._run(search, trials))
            print_search_summary(self.study_name, search)
            completed, failed = search.counts()
        if not completed:
            raise LemError(
                f"search {self.study_name}: none of {failed} trial(s) completed; see each trial's results.json "
                f"under {sweep_dir}",
                exit_code=1,
            )
        return returns

    def _trial(self, search: SearchStudy, space: SearchSpace, facts: MachineFacts) -> _Trial:
        trial = search.ask(space.distributions)
        overrides = [*space.overrides(trial.params), f"hydra.sweep.subdir={trial.number}"]
        config, job_dir, findings = self.compose_job(overrides, facts)
        return _Trial(trial.number, dict(trial.params), overrides, config, job_dir, tuple(findings))

    def _run(self, search: SearchStudy, trials: list[_Trial]) -> Any:
        """Launch the valid trials, record the invalid ones without running them, and tell the study every outcome."""
        assert self.launcher is not None
        valid = [t for t in trials if not errors(t.findings)]
        for trial in (t for t in trials if errors(t.findings)):
            _record_invalid(trial)
        returns = None
        try:
            if valid:
                returns = self.launcher.launch([t.overrides for t in valid], initial_job_idx=valid[0].number)
        except Exception as ex:  # e.g. a launcher that raises for a failed job: each results.json says what happened
            log.warning("search %s: the launcher raised %s: %s", self.study_name, type(ex).__name__, ex)
        except BaseException:  # interrupted (SIGINT/SIGTERM): trials that did not finish are queued again
            for trial in trials:
                job = read_job(trial.job_dir)
                if job.status in ("ok", "failed"):
                    search.finish(trial.number, read_outcome(job, search.objectives))
                else:
                    search.requeue(trial.number, trial.params, f"{job.status}; its parameters were queued again")
            raise
        finally:  # each failure is recorded in the study and reported by the search, not as a failed process
            app.settled_by_sweeper(t.job_dir for t in trials)
        for trial in trials:
            outcome = search.finish(trial.number, read_outcome(read_job(trial.job_dir), search.objectives))
            print_trial(self.study_name, trial.number, trial.params, outcome, search.objectives)
        return returns


def _record_invalid(trial: _Trial) -> None:
    """A trial with an error finding: its failed results.json (phase validate), written as the harness writes one,
    and its overrides where Hydra keeps them, so that the report places it; nothing is loaded or launched."""
    blocking = errors(trial.findings)[0]
    task_overrides = [o for o in trial.overrides if not o.startswith("hydra.")]
    (trial.job_dir / HYDRA_FOLDER).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(task_overrides), trial.job_dir / HYDRA_FOLDER / "overrides.yaml")
    with contextlib.suppress(LemError), RunRecord(trial.config, list(trial.findings), trial.job_dir):
        raise LemError(f"{blocking.param}: {blocking.message} (not launched)")
