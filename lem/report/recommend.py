"""A search's answers from the group summary: the Pareto front of J/output-token against speed (one energy kind per
front, never mixed), and the cheapest configuration that meets a requirement such as `output_tokens_per_s>=500`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lem.errors import LemError
from lem.report.figures import METRIC_BY_NAME, METRICS
from lem.report.groups import FRONT_X, Group
from lem.report.load import Sweep
from lem.report.stats import Estimate, describe, pareto_front


def pareto_groups(summary: pd.DataFrame, kind: str, x_metric: str = FRONT_X) -> pd.DataFrame:
    """Every group with a median J/output-token of energy `kind` and a median `x_metric`, with `on_front` marking the
    Pareto front (no other group at least as good on both, better on one); one energy kind only, never mixed.

    Columns: group, n, y_* (J/token median and its CI), x_* (the same for `x_metric`), on_front; sorted by x.
    """
    xs = summary[(summary["metric"] == x_metric) & (summary["n"] > 0)].set_index("group")
    ys = summary[(summary["metric"] == "j_per_output_token") & (summary["kind"] == kind)]
    ys = ys[ys["group"].isin(xs.index) & (ys["n"] > 0)].set_index("group")
    columns = ["median", "median_ci_low", "median_ci_high"]
    table = pd.concat(
        [ys[["n"]], ys[columns].add_prefix("y_"), xs.loc[ys.index, columns].add_prefix("x_")], axis=1
    ).reset_index()
    maximise_x = not METRIC_BY_NAME[x_metric].lower_is_better
    table["on_front"] = pareto_front(table["x_median"], table["y_median"], maximise_x=maximise_x, maximise_y=False)
    return table.sort_values("x_median", kind="stable").reset_index(drop=True)


_REQUIREMENT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Requirement:
    """`METRIC>=X` or `METRIC<=X`, met by a configuration whose median meets it."""

    text: str
    metric: str
    op: str
    threshold: float

    def met(self, value: float) -> bool:
        """Whether `value` meets the requirement (NaN never does)."""
        return bool(value >= self.threshold if self.op == ">=" else value <= self.threshold)


def metric_names(sweep: Sweep) -> list[str]:
    """What --require and --rank-by accept: the summarised metrics and every other numeric column of the jobs."""
    known = {c for m in METRICS for c in m.columns.values()}
    numeric = [
        c
        for c in sweep.table.columns
        if c not in known and not c.startswith("config.") and pd.api.types.is_numeric_dtype(sweep.table[c])
    ]
    return [*METRIC_BY_NAME, *numeric]


def parse_requirement(text: str, sweep: Sweep) -> Requirement:
    """Parse `METRIC>=X` / `METRIC<=X`; raises LemError naming the accepted forms and metrics."""
    match = _REQUIREMENT.match(text)
    if match is None:
        raise LemError(f'--require: {text!r} is not METRIC>=X or METRIC<=X; e.g. --require "output_tokens_per_s>=500"')
    metric, op, threshold = match.groups()
    names = metric_names(sweep)
    if metric not in names:
        raise LemError(f"--require: {metric!r} is not a metric of these results; use one of: {', '.join(names)}")
    return Requirement(text.strip(), metric, op, float(threshold))


def _column(metric: str, kind: str) -> str:
    """The table column of `metric` for energy kind `kind` (a plain column is its own name)."""
    spec = METRIC_BY_NAME.get(metric)
    if spec is None:
        return metric
    return spec.columns.get(kind) or spec.columns.get("") or ""


def _kinds(*metrics: str) -> list[str]:
    """The energy kinds to answer for: those of the first metric that has kinds, else the one plain kind ""."""
    for metric in metrics:
        spec = METRIC_BY_NAME.get(metric)
        if spec is not None and "" not in spec.columns:
            return list(spec.columns)
    return [""]


@dataclass(frozen=True)
class Candidate:
    """A group with its rank metric and required metric summarised over its ok runs."""

    group: Group
    rank: Estimate
    required: Estimate


@dataclass(frozen=True)
class Recommendation:
    """The answer to one requirement for one energy kind: the best group meeting it (None when none does), the
    group closest to meeting it otherwise, how many groups were considered and met it, and the best group's impact
    figures of the same kind (medians with CIs)."""

    requirement: Requirement
    rank_metric: str
    kind: str
    best: Candidate | None
    closest: Candidate | None
    considered: int
    meeting: int
    impact: dict[str, Estimate]


def recommend(
    groups: list[Group], requirement: Requirement, rank_metric: str, *, resamples: int, seed: int
) -> list[Recommendation]:
    """Per energy kind: the group with the best median `rank_metric` (lowest J/output-token by default: the cheapest)
    among those whose median `requirement.metric` meets the requirement."""
    answers = []
    lower_is_better = METRIC_BY_NAME[rank_metric].lower_is_better if rank_metric in METRIC_BY_NAME else True
    for kind in _kinds(rank_metric, requirement.metric):
        rank_column, required_column = _column(rank_metric, kind), _column(requirement.metric, kind)
        candidates = []
        for group in groups:
            if rank_column not in group.ok or required_column not in group.ok:
                continue
            rows = group.ok[group.ok[rank_column].notna() & group.ok[required_column].notna()]
            if rows.empty:
                continue
            rank = describe(rows[rank_column].to_numpy(dtype=float), resamples=resamples, seed=seed)
            required = describe(rows[required_column].to_numpy(dtype=float), resamples=resamples, seed=seed)
            candidates.append(Candidate(group, rank, required))
        if not candidates:
            continue
        meeting = [c for c in candidates if requirement.met(c.required.median)]
        sign = 1.0 if lower_is_better else -1.0
        best = min(meeting, key=lambda c: sign * c.rank.median) if meeting else None
        closest = None
        if best is None:
            towards = -1.0 if requirement.op == ">=" else 1.0  # the highest value for >=, the lowest for <=
            closest = min(candidates, key=lambda c: towards * c.required.median)
        impact = {}
        if best is not None:
            for name in (
                "g_co2e_per_1m_output_tokens",
                "energy_cost_per_1m_output_tokens",
                "instance_cost_per_1m_output_tokens",
            ):
                column = _column(name, kind)
                values = best.group.ok[column].to_numpy(dtype=float) if column in best.group.ok else np.array([])
                if not np.isnan(values).all():
                    impact[name] = describe(values, resamples=resamples, seed=seed)
        answers.append(
            Recommendation(requirement, rank_metric, kind, best, closest, len(candidates), len(meeting), impact)
        )
    return answers
