"""Serving sweeps (scenario=serving): J per request and p99 TTFT against the target request rate, with the SLO line,
and the highest rate that met the SLOs.

A rate met the SLOs where the median (over the ok jobs at that rate) of the window's p99 TTFT is within the TTFT SLO
and that of its p99 TPOT within the TPOT SLO. One curve per combination of the other swept parameters. Energy per
request is the window's energy over the requests completed in it (the result's `serving` block); an estimate is
labelled and drawn dashed, never beside a measurement as if it were one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lem.results.schema import Result

RATE_KEY = "scenario.request_rate"
SERVING_PLOT = "serving_rate.png"
_RATE = "serving_target_rate_per_s"
_FIGURES = (
    "serving_j_per_request",
    "serving_estimated_j_per_request",
    "serving_ttft_p99_s",
    "serving_tpot_p99_s",
    "serving_goodput_requests_per_s",
    "serving_achieved_rate_per_s",
    "serving_ttft_slo_s",
    "serving_tpot_slo_s",
)


def serving_columns(result: Result) -> dict[str, Any]:
    """The table columns of a result's `serving` block ({} for an offline result); rate inf as math.inf."""
    serving = result.serving
    if serving is None:
        return {}
    target = serving.target_request_rate_per_s
    return {
        _RATE: math.inf if target is None else target,
        "serving_achieved_rate_per_s": serving.achieved_request_rate_per_s,
        "serving_j_per_request": serving.j_per_request,
        "serving_estimated_j_per_request": serving.estimated_j_per_request,
        "serving_ttft_p99_s": serving.ttft_s.p99 if serving.ttft_s is not None else None,
        "serving_tpot_p99_s": serving.tpot_s.p99 if serving.tpot_s is not None else None,
        "serving_goodput_requests_per_s": serving.goodput_requests_per_s,
        "serving_ttft_slo_s": serving.ttft_slo_s,
        "serving_tpot_slo_s": serving.tpot_slo_s,
    }


def serving_points(table: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """One row per (curve, target rate): the medians of the ok serving jobs, `energy_kind`, `j_per_request` (of that
    kind), `meets_slos`; sorted by curve and rate. Empty where the sweep has no serving result."""
    if _RATE not in table or table[_RATE].isna().all():
        return pd.DataFrame()
    jobs = table[(table["status"] == "ok") & table[_RATE].notna()].copy()
    others = [k for k in swept if k != RATE_KEY and k in jobs]
    jobs["curve"] = jobs[others].astype(str).agg(", ".join, axis=1) if others else "all"
    points = jobs.groupby(["curve", _RATE], sort=True)[list(_FIGURES)].median(numeric_only=False).reset_index()
    measured = points["serving_j_per_request"].notna()
    points["energy_kind"] = measured.map({True: "measured", False: "estimate"})
    points["j_per_request"] = points["serving_j_per_request"].where(measured, points["serving_estimated_j_per_request"])
    points["meets_slos"] = (points["serving_ttft_p99_s"] <= points["serving_ttft_slo_s"]) & (
        points["serving_tpot_p99_s"] <= points["serving_tpot_slo_s"]
    )
    return points


def highest_rates(points: pd.DataFrame) -> dict[str, float | None]:
    """Per curve, the highest target rate that met the SLOs (None: none did)."""
    best: dict[str, float | None] = {}
    for curve, rows in points.groupby("curve", sort=False):
        met = rows[rows["meets_slos"]]
        best[str(curve)] = float(met[_RATE].max()) if not met.empty else None
    return best


def _rate_text(rate: float | None) -> str:
    return "none" if rate is None else "inf" if math.isinf(rate) else f"{rate:g} req/s"


def _slo_text(points: pd.DataFrame) -> str:
    ttft, tpot = points["serving_ttft_slo_s"].iloc[0], points["serving_tpot_slo_s"].iloc[0]
    return f"p99 TTFT <= {ttft:g} s and p99 TPOT <= {tpot:g} s"


def serving_lines(table: pd.DataFrame, swept: list[str]) -> list[str]:
    """The report's Markdown section for a serving sweep ([] without serving results)."""
    points = serving_points(table, swept)
    if points.empty:
        return []
    lines = [
        "## Serving: energy per request and p99 TTFT against request rate",
        "",
        "Per target rate, the median over its ok jobs of the steady-state window's figures. J / request = the "
        f"window's energy / the requests completed in it. SLOs met: {_slo_text(points)}.",
        "",
        "| curve | target rate (req/s) | achieved (req/s) | J / request | p99 TTFT (s) | p99 TPOT (s) "
        "| goodput (req/s) | SLOs met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for _, row in points.iterrows():
        kind = " (ESTIMATE)" if row["energy_kind"] == "estimate" else ""
        lines.append(
            f"| {row['curve']} | {row[_RATE]:g} | {row['serving_achieved_rate_per_s']:.3g} "
            f"| {row['j_per_request']:.4g}{kind} | {row['serving_ttft_p99_s']:.3g} | {row['serving_tpot_p99_s']:.3g} "
            f"| {row['serving_goodput_requests_per_s']:.3g} | {'yes' if row['meets_slos'] else 'no'} |"
        )
    lines.append("")
    lines += [
        f"- highest rate that met the SLOs ({curve}): **{_rate_text(r)}**" for curve, r in highest_rates(points).items()
    ]
    return [*lines, ""]


def serving_console_lines(table: pd.DataFrame, swept: list[str]) -> list[str]:
    """One console line per curve: the highest rate that met the SLOs ([] without serving results)."""
    points = serving_points(table, swept)
    if points.empty:
        return []
    slo = _slo_text(points)
    return [
        f"serving ({curve}): highest rate with {slo}: {_rate_text(r)}" for curve, r in highest_rates(points).items()
    ]


def serving_plot(table: pd.DataFrame, swept: list[str], path: Path) -> Path | None:
    """J per request (left) and p99 TTFT with the TTFT SLO line (right) against the target rate, per curve, the
    highest rate that met the SLOs marked; rate inf is left out of the axes. None without finite-rate points."""
    points = serving_points(table, swept)
    if points.empty:
        return None
    points = points[points[_RATE].map(math.isfinite)]
    if points.empty:
        return None
    figure = Figure(figsize=(11, 4.5))
    energy_axes, ttft_axes = figure.subplots(1, 2)
    best = highest_rates(points)
    for curve, rows in points.groupby("curve", sort=False):
        for kind, part in rows.groupby("energy_kind"):
            estimate = kind == "estimate"
            energy_axes.plot(
                part[_RATE],
                part["j_per_request"],
                linestyle="--" if estimate else "-",
                marker="^" if estimate else "o",
                label=f"{curve}{' (estimate)' if estimate else ''}",
            )
        ttft_axes.plot(rows[_RATE], rows["serving_ttft_p99_s"], marker="o", label=str(curve))
        rate = best[str(curve)]
        if rate is not None:
            met = rows[rows[_RATE] == rate]
            ttft_axes.scatter(met[_RATE], met["serving_ttft_p99_s"], s=160, facecolors="none", edgecolors="green")
    ttft_slo = points["serving_ttft_slo_s"].iloc[0]
    ttft_axes.axhline(ttft_slo, color="red", linestyle=":", label=f"TTFT SLO {ttft_slo:g} s")
    kinds = set(points["energy_kind"])
    energy_axes.set(
        xlabel="target request rate (req/s)",
        ylabel="J / request" + (" (estimate)" if kinds == {"estimate"} else ""),
        title="J / request = window energy / completed",
    )
    ttft_axes.set(
        xlabel="target request rate (req/s)",
        ylabel="p99 TTFT (s)",
        title="p99 TTFT (circled: highest rate meeting the SLOs)",
    )
    for axes in (energy_axes, ttft_axes):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path
