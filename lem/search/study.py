"""The study of a search: Optuna 5 over SQLite in the sweep directory, one trial per job folder named by its number.

Resume: opening the study again continues it. Trials already finished are never run again. A trial a killed search
left RUNNING is recorded complete when its results.json finished ok, and otherwise marked FAIL (`interrupted`) with
its parameters queued again, so the next trial runs them. A trial whose energy source (measured or estimate) differs
from the study's is marked FAIL: one study, one energy source, one front.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from lem.errors import LemError
from lem.results.reader import read_job
from lem.search.objectives import Outcome, read_outcome

STUDY_FILE = "study.db"
LOCK_FILE = "study.lock"
SAMPLERS = ("tpe", "nsga2", "random")
#: Study attributes recording what the study searches; a resumed search must search the same.
_RECORD = "lem_search"
_ENERGY_SOURCE = "lem_energy_source"


@contextmanager
def search_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep directory for this process (released by the OS however the process ends)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / LOCK_FILE
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as ex:
            raise LemError(
                f"hydra.sweep.dir={sweep_dir}: another search is running on it ({path} is locked); wait for it or "
                "use another hydra.sweep.dir"
            ) from ex
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """`tpe` (multi-objective TPE), `nsga2` (evolutionary; for hundreds of trials) or `random`."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise LemError(f"hydra.sweeper.sampler: {name!r} is not a sampler lem offers; use one of: {', '.join(SAMPLERS)}")


@dataclass
class SearchStudy:
    """The study, its storage (for attributes of trials started by an earlier process) and where its jobs live."""

    study: optuna.Study
    storage: RDBStorage
    sweep_dir: Path
    objectives: list[str]

    def job_dir(self, number: int) -> Path:
        """Trial `number`'s job folder: named by its number."""
        return self.sweep_dir / str(number)

    def _set_attrs(self, number: int, attrs: dict[str, Any]) -> None:
        study_id = self.storage.get_study_id_from_name(self.study.study_name)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, value)

    def ask(self, distributions: dict[str, BaseDistribution]) -> optuna.Trial:
        """A new trial (a queued one first), its job folder recorded."""
        trial = self.study.ask(distributions)
        trial.set_user_attr("job_dir", str(self.job_dir(trial.number)))
        return trial

    def finish(self, number: int, outcome: Outcome) -> Outcome:
        """Record a launched trial's outcome (complete with its values, or FAIL with the reason); returns it as
        recorded: a complete outcome of another energy source than the study's becomes a failure."""
        known = self.study.user_attrs.get(_ENERGY_SOURCE)
        if outcome.values is not None and outcome.energy_source is not None:
            if known is None:
                self.study.set_user_attr(_ENERGY_SOURCE, outcome.energy_source)
            elif known != outcome.energy_source:
                reason = (
                    f"its energy is {outcome.energy_source}, the study's is {known}: a front never mixes them "
                    "(its results.json stays ok; use another hydra.sweep.dir for this machine)"
                )
                outcome = Outcome(None, outcome.energy_source, reason)
        attrs: dict[str, Any] = {"energy_source": outcome.energy_source}
        if outcome.reason is not None:
            attrs["fail_reason"] = outcome.reason
        self._set_attrs(number, attrs)
        if outcome.values is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self.study.tell(number, outcome.values)
        return outcome

    def requeue(self, number: int, params: dict[str, Any], reason: str) -> None:
        """Mark a trial that never finished FAIL (`interrupted`, not counted as run) and queue its parameters again."""
        self._set_attrs(number, {"fail_reason": reason, "interrupted": True})
        self.study.tell(number, state=TrialState.FAIL)
        self.study.enqueue_trial(dict(params), user_attrs={"requeued_from": number})

    def repair(self) -> list[str]:
        """Settle the trials a killed search left RUNNING; one line per trial saying what was done."""
        lines = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            outcome = read_outcome(read_job(self.job_dir(trial.number)), self.objectives)
            if outcome.values is not None:
                recorded = self.finish(trial.number, outcome)
                done = "recorded complete" if recorded.values is not None else f"recorded failed: {recorded.reason}"
                lines.append(f"trial {trial.number} was left running, but its results.json is ok: {done}")
            else:
                reason = "left running by a search that was killed; its parameters were queued again"
                self.requeue(trial.number, trial.params, reason)
                lines.append(f"trial {trial.number} was left running by a killed search: marked failed, re-queued")
        return lines

    def counts(self) -> tuple[int, int]:
        """(completed, failed) trials; trials marked failed because they were interrupted count as neither."""
        trials = self.study.get_trials(deepcopy=False)
        completed = sum(t.state == TrialState.COMPLETE for t in trials)
        failed = sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted") for t in trials)
        return completed, failed

    def failures(self) -> list[FrozenTrial]:
        """Trials that ran and failed, with their `fail_reason`."""
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        return [t for t in trials if not t.user_attrs.get("interrupted")]

    def energy_source(self) -> str | None:
        """The energy source every complete trial's energy objectives came from (None before the first)."""
        return self.study.user_attrs.get(_ENERGY_SOURCE)


def open_study(
    sweep_dir: Path, name: str, objectives: dict[str, str], record: dict[str, Any], sampler: str, seed: int | None
) -> SearchStudy:
    """Create or continue the study `name` in sweep_dir/study.db; `record` (objectives, space, fixed overrides) must
    match what the study was created with. The sampler's seed moves on with the trials already run, so that a resumed
    search does not propose the same sequence again."""
    url = f"sqlite:///{(sweep_dir / STUDY_FILE).resolve()}"
    storage = RDBStorage(url)
    directions = list(objectives.values())
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True)
    except ValueError as ex:
        raise LemError(f"hydra.sweep.dir={sweep_dir}: study {name!r} cannot be continued: {ex}") from ex
    stored = study.user_attrs.get(_RECORD)
    if stored is None:
        if study.trials or (sweep_dir / "0").exists():
            raise LemError(
                f"hydra.sweep.dir={sweep_dir}: holds trial folders but no record of study {name!r}; "
                "use a new hydra.sweep.dir (or the study_name it was run with)"
            )
        study.set_user_attr(_RECORD, record)
    elif stored != record:
        changed = sorted(key for key in {*stored, *record} if stored.get(key) != record.get(key))
        differences = "; ".join(f"{k}: the study's {stored.get(k)}, this run's {record.get(k)}" for k in changed)
        raise LemError(
            f"hydra.sweep.dir={sweep_dir}: study {name!r} was run with other settings ({differences}); continue it "
            "with the same ones, or use a new hydra.sweep.dir"
        )
    study.sampler = make_sampler(sampler, None if seed is None else seed + len(study.trials))
    return SearchStudy(study, storage, sweep_dir, list(objectives))
