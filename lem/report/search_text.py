"""The report's text about a search: the impact inputs, the Pareto front tables and the recommendations."""

from __future__ import annotations

import math

import pandas as pd

from lem.report.figures import METRIC_BY_NAME, unit_text
from lem.report.groups import Group
from lem.report.recommend import Recommendation
from lem.report.text import KIND_WORD, estimate_text, metric_label, num, with_ci


def impact_sentence(table: pd.DataFrame) -> str:
    """The impact inputs stored in the ok jobs' results (config `impact.*`), or "" when none was given."""
    ok = table[table["status"] == "ok"]

    def values(key: str) -> list[str]:
        column = f"impact_{key}"
        return sorted({num(v) if isinstance(v, float) else str(v) for v in ok[column].dropna()}) if column in ok else []

    grid, price, gpu_hour = values("grid_intensity_g_per_kwh"), values("price_per_kwh"), values("gpu_hour_price")
    if not (grid or price or gpu_hour):
        return ""
    currency = "/".join(values("currency"))
    parts = [
        f"grid {'/'.join(grid)} g CO2e per kWh" if grid else "no grid intensity",
        f"PUE {'/'.join(values('pue'))}",
        f"{'/'.join(price)} {currency} per kWh" if price else "no electricity price",
        f"{'/'.join(gpu_hour)} {currency} per GPU-hour" if gpu_hour else "no GPU-hour price",
    ]
    return "impact inputs (not measured; CO2e and cost per 1M output tokens follow each job's energy): " + ", ".join(
        parts
    )


def _impact_text(summary: pd.DataFrame, group: Group, kind: str) -> str:
    """The group's median CO2e and cost per 1M output tokens of energy `kind`, or "—"."""
    rows = summary[(summary["group"] == group.label) & (summary["n"] > 0)]
    parts = []
    for name, word in (("g_co2e_per_1m_output_tokens", "CO2e"), ("energy_cost_per_1m_output_tokens", "energy")):
        row = rows[(rows["metric"] == name) & (rows["kind"] == kind)]
        if not row.empty:
            parts.append(f"{num(row['median'].iloc[0])} {row['unit'].iloc[0]} {word}")
    return ", ".join(parts) or "—"


def front_lines(fronts: dict[str, pd.DataFrame], groups: list[Group], summary: pd.DataFrame) -> list[str]:
    """Per energy kind: the configurations on the Pareto front of J/output-token against throughput."""
    by_label = {g.label: g for g in groups}
    lines = []
    for kind, front in fronts.items():
        on_front = front[front["on_front"]]
        lines += [
            f"## Pareto front: J / output token ({KIND_WORD[kind]}) against throughput",
            "",
            f"{len(on_front)} of {len(front)} configuration(s) ({KIND_WORD[kind]} J/token) are on the front: no "
            "other is at least as good on both, and better on one. Medians over each configuration's ok "
            "runs; measured and estimated energy never share a front. Figure: pareto_throughput.png.",
            "",
            f"| # | configuration | J / output token ({KIND_WORD[kind]}) median [95% CI] "
            "| throughput (tok/s) median [95% CI] | n | per 1M output tokens (median) |",
            "|---:|---|---|---|---:|---|",
        ]
        for _, row in on_front.iterrows():
            group = by_label[row["group"]]
            energy = with_ci(row["y_median"], row["y_median_ci_low"], row["y_median_ci_high"])
            speed = with_ci(row["x_median"], row["x_median_ci_low"], row["x_median_ci_high"])
            lines.append(
                f"| {group.number} | {group.label} | {energy} | {speed} | {row['n']} "
                f"| {_impact_text(summary, group, kind)} |"
            )
        lines.append("")
    return lines


def recommendation_line(rec: Recommendation) -> str:
    """One requirement's answer for one energy kind, in a sentence."""
    requirement, word = rec.requirement, f" ({KIND_WORD[rec.kind]})" if rec.kind else ""
    if rec.best is None:
        closest = rec.closest
        assert closest is not None
        extreme = "highest" if requirement.op == ">=" else "lowest"
        return (
            f"{requirement.text}{word}: no configuration meets it; of {rec.considered} configuration(s), the {extreme} "
            f"median {requirement.metric} is {num(closest.required.median)} (#{closest.group.number} "
            f"{closest.group.label})"
        )
    best, spec = rec.best, METRIC_BY_NAME.get(rec.rank_metric)
    rank_label = metric_label(rec.rank_metric, rec.kind if spec is not None and rec.kind in spec.columns else "")
    cheapest = "cheapest" if spec is None or spec.lower_is_better else "best"
    line = (
        f"{requirement.text}{word}: {rec.meeting} of {rec.considered} configuration(s) meet it; the {cheapest} is "
        f"#{best.group.number} {best.group.label}: median {rank_label} {estimate_text(best.rank)}, median "
        f"{requirement.metric} {estimate_text(best.required)}"
    )
    low, high = best.required.median_low, best.required.median_high
    if not math.isnan(low) and not (requirement.met(low) and requirement.met(high)):
        line += "; the CI of its median crosses the threshold: it may not meet it on a rerun"
    if best.rank.n < 2:
        line += "; one run per configuration, so no CI: repeat the configuration (campaign cycles) for one"
    if rec.impact:
        costs = [
            f"{num(e.median)} {unit_text(METRIC_BY_NAME[name], best.group.ok)} "
            f"{name.split('_per_')[0].replace('_', ' ').replace('g co2e', 'CO2e')}"
            for name, e in rec.impact.items()
        ]
        line += f"; per 1M output tokens it costs {', '.join(costs)}"
    return line


def recommendation_lines(recommendations: list[Recommendation]) -> list[str]:
    """The Markdown section answering each `--require`."""
    if not recommendations:
        return []
    lines = ["## Recommendation", ""]
    lines += [f"- {recommendation_line(rec)}" for rec in recommendations]
    return [*lines, ""]
