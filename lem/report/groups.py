"""Group a sweep's jobs, summarise each group's metrics across its runs, rank J/token and compare two selections.

Measured and estimated energy are summarised apart (`kind` "measured" / "estimate"; "" for non-energy metrics) and
never pooled: a group whose jobs mix the two gets both rows and the mark `mixed_energy_sources`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lem.errors import LemError
from lem.report.figures import METRIC_BY_NAME, METRICS, unit_text
from lem.report.load import Sweep, typed_value
from lem.report.stats import MIN_CYCLES, Comparison, compare, describe

BACKEND_COLUMN = "config.backend.name"
#: What the report ranks by, and what "cheapest" means, unless told otherwise (`--rank-by`).
DEFAULT_RANK_BY = "j_per_output_token"
#: The front is J/output-token against this (throughput, higher is better).
FRONT_X = "output_tokens_per_s"


def value_text(value: Any) -> str:
    """A parameter value as the report prints it: integral floats without `.0`, missing as `n/a`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def resolve_column(sweep: Sweep, key: str, option: str) -> str:
    """The table column for a user's key: itself, `config.<key>`, or `config.<key>.name` (a config group's choice)."""
    for column in (key, f"config.{key}", f"config.{key}.name"):
        if column in sweep.table.columns:
            return column
    swept = ", ".join(sweep.swept) or "none"
    raise LemError(
        f"{option}: {key!r} is neither a swept parameter ({swept}) nor a config key of these results; "
        "use a dotted config key such as backend.batch_size"
    )


@dataclass
class Group:
    """The jobs (any status) sharing one value of every grouping key; `number` is its 1-based place in the report."""

    values: dict[str, Any]
    jobs: pd.DataFrame
    number: int = 0

    @property
    def label(self) -> str:
        """`key=value, ...`, or `all jobs` when there are no grouping keys."""
        return ", ".join(f"{k}={value_text(v)}" for k, v in self.values.items()) or "all jobs"

    @property
    def short_label(self) -> str:
        """One `key=value` line per key, keys cut to their last dotted part where that stays unambiguous."""
        names = [key.rsplit(".", 1)[-1] for key in self.values]
        if len(set(names)) < len(names):
            names = list(self.values)
        lines = [f"{name}={value_text(v)}" for name, v in zip(names, self.values.values(), strict=True)]
        return "\n".join(lines) or "all jobs"

    @property
    def ok(self) -> pd.DataFrame:
        """The jobs that finished with status ok."""
        return self.jobs[self.jobs["status"] == "ok"]

    def workload(self) -> str:
        """Token totals of the ok jobs: `in A / out B` per distinct pair (several when the runs differ)."""
        if self.ok.empty or "output_tokens" not in self.ok:
            return ""
        pairs = sorted(
            {(int(i), int(o)) for i, o in zip(self.ok["input_tokens"], self.ok["output_tokens"], strict=True)}
        )
        return "; ".join(f"in {i} / out {o}" for i, o in pairs)

    def energy_kinds(self) -> list[str]:
        """The energy kinds ("measured", "estimate") any ok job of the group has a J/token figure of."""
        columns = METRIC_BY_NAME["j_per_output_token"].columns
        return [kind for kind, column in columns.items() if column in self.ok and self.ok[column].notna().any()]

    def marks(self) -> list[str]:
        """Group-level warnings: few_cycles, mixed_energy_sources, token_totals_vary, failed/missing jobs."""
        marks = []
        if len(self.ok) < MIN_CYCLES:
            marks.append("few_cycles")
        columns = METRIC_BY_NAME["j_per_output_token"].columns
        covered = [self.ok[c].notna().all() for c in columns.values() if c in self.ok]
        if len(self.energy_kinds()) > 1 and not all(covered):
            marks.append("mixed_energy_sources")
        if ";" in self.workload():
            marks.append("token_totals_vary")
        not_ok = Counter(self.jobs.loc[self.jobs["status"] != "ok", "status"])
        marks += [f"{status}:{count}" for status, count in sorted(not_ok.items())]
        return marks

    def quality_flags(self) -> str:
        """Each quality flag with how many ok jobs raised it, e.g. `short_window (2/3)`."""
        if "flags" not in self.ok:
            return ""
        counts = Counter(flag for flags in self.ok["flags"].dropna() for flag in flags.split(";") if flag)
        return ", ".join(f"{flag} ({count}/{len(self.ok)})" for flag, count in sorted(counts.items()))


def _sort_key(value: Any) -> tuple[int, float, str]:
    text = value_text(value)
    try:
        return (0, float(text), "")
    except ValueError:
        return (1 if text != "n/a" else 2, 0.0, text)


def make_groups(sweep: Sweep, keys: list[str]) -> list[Group]:
    """One Group per distinct combination of `keys` (user spellings), ordered by value (numbers numerically)."""
    columns = {key: resolve_column(sweep, key, "--group-by") for key in keys}
    table = sweep.table
    labels = [tuple(value_text(table.at[i, c]) for c in columns.values()) for i in table.index]
    groups = []
    for label in dict.fromkeys(labels):
        rows = table.loc[[i for i, other in zip(table.index, labels, strict=True) if other == label]]
        values = {key: rows[column].iloc[0] for key, column in columns.items()}
        groups.append(Group(values, rows))
    groups.sort(key=lambda g: [_sort_key(v) for v in g.values.values()])
    for number, group in enumerate(groups, start=1):
        group.number = number
    return groups


def summarise(groups: list[Group], *, resamples: int, seed: int) -> pd.DataFrame:
    """Long table: one row per group × metric × energy kind, with n, mean and median and their bootstrap CIs."""
    rows = []
    for group in groups:
        shared = {
            **{key: value_text(v) for key, v in group.values.items()},
            "group": group.label,
            "n_jobs": len(group.jobs),
            "n_ok": len(group.ok),
            "workload": group.workload(),
            "marks": ";".join(group.marks()),
            "quality_flags": group.quality_flags(),
        }
        for metric in METRICS:
            for kind, column in metric.columns.items():
                values = group.ok[column].to_numpy(dtype=float) if column in group.ok else np.array([])
                if (kind or metric.optional) and np.isnan(values).all():
                    continue
                estimate = describe(values, resamples=resamples, seed=seed)
                rows.append(
                    {
                        **shared,
                        "metric": metric.name,
                        "kind": kind,
                        "unit": unit_text(metric, group.ok),
                        "n": estimate.n,
                        "mean": estimate.mean,
                        "mean_ci_low": estimate.mean_low,
                        "mean_ci_high": estimate.mean_high,
                        "median": estimate.median,
                        "median_ci_low": estimate.median_low,
                        "median_ci_high": estimate.median_high,
                        "few_cycles": estimate.few_cycles,
                    }
                )
    return pd.DataFrame(rows)


def ranking(summary: pd.DataFrame, groups: list[Group], kind: str, metric: str = DEFAULT_RANK_BY) -> pd.DataFrame:
    """Groups ranked by the median of `metric` (J/output-token unless told; of one energy kind, "" for a metric without
    kinds), best first, with a workload-parity mark.

    When the ranked groups span more than one backend and their token totals differ, each group whose totals differ
    from the most common ones is marked `tokens_differ`: its figure per token is not for identical work.
    """
    rows = summary[(summary["metric"] == metric) & (summary["kind"] == kind) & (summary["n"] > 0)]
    ascending = METRIC_BY_NAME[metric].lower_is_better
    rows = rows.sort_values("median", ascending=ascending, kind="stable").reset_index(drop=True)
    by_label = {g.label: g for g in groups}
    ranked = [by_label[label] for label in rows["group"]]
    backends = {b for g in ranked if BACKEND_COLUMN in g.ok for b in g.ok[BACKEND_COLUMN].dropna()}
    workloads = [g.workload() for g in ranked]
    reference = Counter(workloads).most_common(1)[0][0] if workloads else ""
    parity = [
        "tokens_differ" if len(backends) > 1 and len(set(workloads)) > 1 and w != reference else "" for w in workloads
    ]
    return rows.assign(rank=range(1, len(rows) + 1), backends=[", ".join(sorted(backends))] * len(rows), parity=parity)


@dataclass(frozen=True)
class Selection:
    """One side of a comparison: `key=value[,key=value]` and the ok jobs it matches."""

    text: str
    jobs: pd.DataFrame


def select(sweep: Sweep, text: str) -> Selection:
    """The ok jobs whose columns match every `key=value` of `text` (values compared as the report prints them)."""
    mask = sweep.table["status"] == "ok"
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise LemError(f"--compare: {part!r} is not key=value; write e.g. --compare backend=pytorch backend=vllm")
        column = resolve_column(sweep, key.strip(), "--compare")
        wanted = value_text(typed_value(value.strip()))
        mask &= sweep.table[column].map(value_text) == wanted
    return Selection(text, sweep.table[mask])


@dataclass(frozen=True)
class PairResult:
    """A comparison of J/output-token between two selections, with the energy kind used and any caveat."""

    a: Selection
    b: Selection
    kind: str
    comparison: Comparison | None
    note: str


def compare_selections(a: Selection, b: Selection, *, resamples: int, seed: int) -> PairResult:
    """Compare J/output-token of A and B on one energy kind that every job of both has; never measured vs estimate."""
    if a.jobs.empty or b.jobs.empty:
        return PairResult(a, b, "", None, f"no ok job matches {a.text if a.jobs.empty else b.text}")
    columns = METRIC_BY_NAME["j_per_output_token"].columns
    both = pd.concat([a.jobs, b.jobs])
    kind = next((k for k, c in columns.items() if c in both and both[c].notna().all()), "")
    if not kind:
        return PairResult(a, b, "", None, "not comparable: the jobs do not all have the same kind of energy figure")
    column = columns[kind]
    result = compare(a.jobs[column], b.jobs[column], resamples=resamples, seed=seed)
    totals = {side.text: sorted(set(side.jobs["output_tokens"].astype(int))) for side in (a, b)}
    note = "" if totals[a.text] == totals[b.text] else f"output token totals differ ({totals}): not identical work"
    return PairResult(a, b, kind, result, note)
