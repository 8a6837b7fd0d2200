"""The report's PNG figures, drawn with matplotlib's Agg renderer (no display, no pyplot global state).

Estimated energy is never drawn like a measurement: estimate points are hollow triangles on a dashed front, estimate
bars are hatched and light, and every estimate label or axis says "(estimate)".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lem.report.figures import METRIC_BY_NAME, Metric
from lem.report.groups import Group
from lem.report.recommend import pareto_groups
from lem.results.writer import REQUESTS_FILE, TIMESERIES_FILE

DPI = 120
_KIND_STYLE = {
    "measured": {"marker": "o", "color": "tab:blue", "linestyle": "-", "hatch": None, "alpha": 0.85},
    "estimate": {"marker": "^", "color": "tab:orange", "linestyle": "--", "hatch": "//", "alpha": 0.35},
    "": {"marker": "o", "color": "tab:blue", "linestyle": "-", "hatch": None, "alpha": 0.85},
}
_GPU_POWER = re.compile(r"^gpu\d+_power_w$")


def _kind_label(kind: str) -> str:
    return " (estimate)" if kind == "estimate" else " (measured)" if kind == "measured" else ""


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def pareto(summary: pd.DataFrame, groups: list[Group], x_metric: str, path: Path) -> Path | None:
    """J/output-token against `x_metric`: every ok run (each trial of a search) a small grey point, each
    configuration's median a grey marker with its 95% bootstrap CI whiskers, and the Pareto front of each energy kind
    highlighted: coloured, joined and numbered (keyed beside the plot).

    Measured and estimated figures get separate fronts: an estimate never dominates a measurement or the reverse.
    None when no group has both figures.
    """
    x_spec: Metric = METRIC_BY_NAME[x_metric]
    fronts = {kind: pareto_groups(summary, kind, x_metric) for kind in ("measured", "estimate")}
    fronts = {kind: table for kind, table in fronts.items() if not table.empty}
    if not fronts:
        return None
    by_label = {g.label: g for g in groups}
    figure = Figure(figsize=(8, 5.5))
    axes = figure.subplots()
    for kind, table in fronts.items():
        style = _KIND_STYLE[kind]
        y_column, x_column = METRIC_BY_NAME["j_per_output_token"].columns[kind], x_spec.columns[""]
        runs = pd.concat([by_label[label].ok for label in table["group"]])
        axes.scatter(
            runs[x_column], runs[y_column], marker=style["marker"], s=12, color="0.78", label=f"run{_kind_label(kind)}"
        )
        axes.errorbar(
            table["x_median"],
            table["y_median"],
            xerr=[table["x_median"] - table["x_median_ci_low"], table["x_median_ci_high"] - table["x_median"]],
            yerr=[table["y_median"] - table["y_median_ci_low"], table["y_median_ci_high"] - table["y_median"]],
            fmt="none",
            ecolor="0.6",
            alpha=0.6,
            linewidth=1,
        )
        off = table[~table["on_front"]]
        axes.scatter(
            off["x_median"],
            off["y_median"],
            marker=style["marker"],
            s=40,
            facecolors="none",
            edgecolors="0.45",
            label=f"configuration, median{_kind_label(kind)}",
            zorder=3,
        )
        on = table[table["on_front"]]
        hollow = kind == "estimate"
        axes.plot(
            on["x_median"],
            on["y_median"],
            linestyle=style["linestyle"],
            color=style["color"],
            marker=style["marker"],
            markersize=10,
            markerfacecolor="white" if hollow else style["color"],
            markeredgecolor=style["color"] if hollow else "black",
            markeredgewidth=2,
            linewidth=2,
            label=f"Pareto front{_kind_label(kind)}",
            zorder=4,
        )
        for _, row in table.iterrows():
            axes.annotate(
                str(by_label[row["group"]].number),
                (row["x_median"], row["y_median"]),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8 if row["on_front"] else 7,
                fontweight="bold" if row["on_front"] else "normal",
                color="black" if row["on_front"] else "0.45",
            )
    kinds = list(fronts)
    better = "lower" if x_spec.lower_is_better else "higher"
    axes.set_xlabel(f"{x_spec.label} ({x_spec.unit}); {better} is better")
    only = " (estimate)" if kinds == ["estimate"] else ""
    axes.set_ylabel(f"J / output token{only}; lower is better")
    title = f"Pareto front: J / output token vs {x_spec.label} (grey: every run and non-front configuration)"
    if len(kinds) > 1:
        title += "\nmeasured (filled) and estimated (hollow, dashed) figures: separate fronts, not comparable"
    elif kinds == ["estimate"]:
        title += "\nenergy is an ESTIMATE (power model), not a measurement"
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    shown = sorted({label for table in fronts.values() for label in table["group"]}, key=lambda g: by_label[g].number)
    front_labels = {label for table in fronts.values() for label in table.loc[table["on_front"], "group"]}
    key = "\n".join(f"{'*' if g in front_labels else ' '}{by_label[g].number}: {g}" for g in shown)
    axes.text(1.02, 1.0, f"* on a front\n{key}", transform=axes.transAxes, fontsize=7, va="top", family="monospace")
    return _save(figure, path)


#: Above this many characters of tick text across a bar chart, ticks show group numbers keyed beside the plot.
_MAX_TICK_CHARS = 100


def _tick(group: Group, compact: bool) -> str:
    """A bar group's x label: its number, one line per key (unless compact), and its energy-kind and cycle marks."""
    marks = [m for m in group.marks() if m in ("few_cycles", "mixed_energy_sources")]
    lines = [f"#{group.number}", *([] if compact else [group.short_label]), *marks]
    return "\n".join(lines)


def bars(summary: pd.DataFrame, groups: list[Group], metric: str, path: Path) -> Path | None:
    """One bar per group (and energy kind): the mean with its 95% bootstrap CI as whiskers, each run as a dot, the
    number of runs above. A group mixing measured and estimated jobs gets two bars side by side, the estimate hatched,
    and `mixed_energy_sources` under its label.
    """
    spec = METRIC_BY_NAME[metric]
    rows = summary[(summary["metric"] == metric) & (summary["n"] > 0)]
    if rows.empty:
        return None
    labels = list(dict.fromkeys(rows["group"]))
    kinds = [k for k in spec.columns if (rows["kind"] == k).any()]
    by_label = {g.label: g for g in groups}
    figure = Figure(figsize=(max(6.0, 0.8 * len(labels) + 2.5), 5))
    axes = figure.subplots()
    for position, label in enumerate(labels):
        present = rows[rows["group"] == label].set_index("kind")
        width = 0.8 / len(present)
        for k, kind in enumerate(kind for kind in kinds if kind in present.index):
            row, style = present.loc[kind], _KIND_STYLE[kind]
            x = position + (k - (len(present) - 1) / 2) * width
            yerr = None
            if not np.isnan(row["mean_ci_low"]):
                yerr = [[row["mean"] - row["mean_ci_low"]], [row["mean_ci_high"] - row["mean"]]]
            axes.bar(
                x,
                row["mean"],
                width * 0.9,
                yerr=yerr,
                capsize=4,
                color=style["color"],
                alpha=style["alpha"],
                hatch=style["hatch"],
                edgecolor=style["color"],
            )
            runs = by_label[label].ok[spec.columns[kind]].dropna().to_numpy(dtype=float)
            axes.scatter(np.full(runs.size, x), runs, color="black", s=10, zorder=3)
            top = np.nanmax([row["mean"], row["mean_ci_high"], *runs])
            few = bool(row["few_cycles"])
            axes.annotate(
                f"n={int(row['n'])}",
                (x, top),
                textcoords="offset points",
                xytext=(0, 4),
                ha="center",
                fontsize=8,
                color="darkred" if few else "black",
            )
    widest = max(len(line) for label in labels for line in by_label[label].short_label.split("\n"))
    compact = widest * len(labels) > _MAX_TICK_CHARS
    axes.set_xticks(range(len(labels)), [_tick(by_label[label], compact) for label in labels], fontsize=8)
    if compact:
        key = "\n".join(f"#{by_label[label].number}: {label}" for label in labels)
        axes.text(1.02, 0.0, key, transform=axes.transAxes, fontsize=7, va="bottom", family="monospace")
    axes.margins(y=0.12)
    only = " (estimate)" if kinds == ["estimate"] else ""
    axes.set_ylabel(f"{spec.label}{only} ({spec.unit})")
    axes.set_title(f"{spec.label}{only} per group: mean with 95% bootstrap CI, dots are runs", fontsize=10)
    if any(kinds):
        handles = [
            Patch(
                facecolor=_KIND_STYLE[k]["color"],
                alpha=_KIND_STYLE[k]["alpha"],
                hatch=_KIND_STYLE[k]["hatch"],
                edgecolor=_KIND_STYLE[k]["color"],
                label="measured" if k == "measured" else "estimate (power model,\nnot measured)",
            )
            for k in kinds
        ]
        axes.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:80] or "all"


def _job_label(job: pd.Series) -> str:
    """`job <path>`, with the campaign's cycle index where the result recorded one."""
    cycle = next((job[c] for c in job.index if c.startswith("campaign.") and "cycle" in c and pd.notna(job[c])), None)
    return f"job {job['job']}" + ("" if cycle is None else f" (cycle {cycle})")


def timeseries(group: Group, folder: Path) -> Path | None:
    """Each job's power over its measured window: GPU power (summed over its GPUs) where sampled, else host CPU
    utilisation on its own axis (a utilisation, not a power). None when no job of the group saved a timeseries.
    """
    gpu_lines, cpu_lines = [], []
    for _, job in group.jobs[group.jobs["has_timeseries"].astype(bool)].iterrows():
        frame = pd.read_parquet(Path(job["job_dir"]) / TIMESERIES_FILE)
        power = [c for c in frame.columns if _GPU_POWER.match(c) and frame[c].notna().any()]
        if power:
            label = _job_label(job) + (f", sum of {len(power)} GPUs" if len(power) > 1 else "")
            gpu_lines.append((label, frame["time_s"], frame[power].sum(axis=1, min_count=1)))
        elif "host_cpu_util_pct" in frame:
            cpu_lines.append((_job_label(job), frame["time_s"], frame["host_cpu_util_pct"]))
    panels = [p for p in (("GPU power (W)", gpu_lines), ("host CPU utilisation (%), not power", cpu_lines)) if p[1]]
    if not panels:
        return None
    figure = Figure(figsize=(8, 3.2 * len(panels)))
    all_axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axes, (ylabel, lines) in zip(all_axes, panels, strict=True):
        for label, time_s, values in lines:
            axes.plot(time_s, values, linewidth=1.2, label=label)
        axes.set_ylabel(ylabel)
        if not ylabel.startswith("GPU"):
            axes.set_ylim(0, 105)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, ncol=2)
    all_axes[-1].set_xlabel("time in the measured window (s)")
    kind = "GPU power" if gpu_lines else "no GPU power sampled: host CPU utilisation"
    all_axes[0].set_title(f"#{group.number} {group.label}: {kind}, one line per job", fontsize=10)
    return _save(figure, folder / f"{group.number:02d}_{_slug(group.label)}.png")


def request_energy(group: Group, folder: Path) -> Path | None:
    """Energy of each request against its output tokens, one colour per job: measured energy where the jobs have it,
    else lem's estimate (said on the axis). None when no job of the group wrote a requests table with energy."""
    points: dict[str, list[tuple[str, pd.Series, pd.Series]]] = {"measured": [], "estimate": []}
    for _, job in group.jobs[group.jobs["has_requests"].astype(bool)].iterrows():
        frame = pd.read_parquet(Path(job["job_dir"]) / REQUESTS_FILE)
        for kind, column in (("measured", "energy_j"), ("estimate", "estimated_energy_j")):
            if frame[column].notna().all():
                points[kind].append((_job_label(job), frame["output_tokens"], frame[column]))
    kind = "measured" if points["measured"] else "estimate"
    if not points[kind]:
        return None
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for label, tokens, energy_j in points[kind]:
        axes.scatter(tokens, energy_j, s=14, alpha=0.7, label=label)
    axes.set_xlabel("output tokens of the request")
    axes.set_ylabel("energy per request (J)" if kind == "measured" else "energy per request (J, ESTIMATE)")
    axes.set_title(f"#{group.number} {group.label}: energy of each request{_kind_label(kind)}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    return _save(figure, folder / f"{group.number:02d}_{_slug(group.label)}.png")
