"""Console output of a search: what it will run, one line per trial, and the Pareto front at the end (rich, stderr)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optuna.distributions import BaseDistribution
from rich.console import Console
from rich.table import Table

from lem.search.objectives import ENERGY_OBJECTIVES, Outcome
from lem.search.space import describe
from lem.search.study import STUDY_FILE, SearchStudy

_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _param_text(params: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items())


def _objective_label(name: str, source: str | None) -> str:
    return f"{name} (ESTIMATE)" if name in ENERGY_OBJECTIVES and source == "estimate" else name


def print_search_plan(
    name: str,
    sweep_dir: Path,
    counts: tuple[int, int] | None,
    distributions: dict[str, BaseDistribution],
    objectives: dict[str, str],
    to_run: int,
    repaired: Sequence[str] = (),
) -> None:
    """The study (None: a dry run, nothing opened), its objectives and space, what resume settled, and how many
    trials this run adds."""
    if counts is None:
        head = f"search {name} (dry run: nothing launched): up to {to_run} trial(s) in {sweep_dir}"
    else:
        head = (
            f"search {name}: study {sweep_dir / STUDY_FILE}: {counts[0]} completed, {counts[1]} failed so far; "
            f"{to_run} trial(s) to run"
        )
    _console.print(head, markup=False)
    goals = ", ".join(f"{direction} {objective}" for objective, direction in objectives.items())
    _console.print(f"  objectives: {goals}", markup=False)
    for key, distribution in distributions.items():
        _console.print(f"  {key}: {describe(distribution)}", markup=False)
    for line in repaired:
        _console.print(f"  resume: {line}", style="yellow", markup=False)


def print_trial(name: str, number: int, params: dict[str, Any], outcome: Outcome, objectives: list[str]) -> None:
    """One line: the trial's parameters and its objective values, or why it failed."""
    head = f"search {name}: trial {number} ({_param_text(params)})"
    if outcome.values is None:
        _console.print(f"{head} failed: {outcome.reason}", style="red", markup=False)
        return
    values = ", ".join(
        f"{_objective_label(o, outcome.energy_source)} {v:.4g}" for o, v in zip(objectives, outcome.values, strict=True)
    )
    _console.print(f"{head}: {values}", style="green", markup=False)


def print_search_summary(name: str, search: SearchStudy) -> None:
    """Counts, the Pareto front (trials no other trial beats on every objective) and each failure's reason."""
    completed, failed = search.counts()
    _console.print(
        f"search {name}: {completed} completed, {failed} failed -> {search.sweep_dir}",
        style="green" if completed else "bold red",
        markup=False,
    )
    source = search.energy_source()
    if completed:
        front = sorted(search.study.best_trials, key=lambda t: t.number)
        table = Table(title=f"search {name}: Pareto front, {len(front)} of {completed} completed trial(s)")
        table.add_column("trial")
        table.add_column("parameters", overflow="fold")
        for objective in search.objectives:
            table.add_column(_objective_label(objective, source))
        for trial in front:
            values = [f"{v:.4g}" for v in trial.values]
            table.add_row(str(trial.number), _param_text(trial.params), *values)
        _console.print(table)
        if source == "estimate":
            _console.print(
                "  energy is an ESTIMATE from lem's power model (no hardware counter here), not a measurement",
                style="yellow",
                markup=False,
            )
    for trial in search.failures():
        reason = trial.user_attrs.get("fail_reason", "no reason recorded")
        line = f"  failed: trial {trial.number} ({_param_text(trial.params)}): {reason}"
        _console.print(line, style="red", markup=False)
