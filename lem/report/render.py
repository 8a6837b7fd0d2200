"""Write the report folder: results.parquet (one row per job), summary.csv (group × metric × energy kind),
summary.md (rankings, comparisons, per-group tables, failed jobs, figures) and the PNG figures; and the console lines.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lem.errors import LemError
from lem.report import plots
from lem.report.figures import METRIC_BY_NAME, METRICS
from lem.report.groups import (
    BACKEND_COLUMN,
    DEFAULT_RANK_BY,
    FRONT_X,
    Group,
    PairResult,
    compare_selections,
    make_groups,
    ranking,
    select,
    summarise,
)
from lem.report.load import Sweep, load_sweep
from lem.report.recommend import Recommendation, pareto_groups, parse_requirement, recommend
from lem.report.search_text import front_lines, impact_sentence, recommendation_line, recommendation_lines
from lem.report.serving import SERVING_PLOT, serving_console_lines, serving_lines, serving_plot
from lem.report.stats import MIN_CYCLES
from lem.report.text import KIND_WORD, cut, metric_label, num, with_ci

RESULTS_TABLE = "results.parquet"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"


@dataclass
class Report:
    """What was written: the loaded sweep, its groups, the long summary, comparisons and every file."""

    sweep: Sweep
    group_by: list[str]
    groups: list[Group]
    summary: pd.DataFrame
    pairs: list[PairResult]
    out_dir: Path
    files: list[Path]
    resamples: int
    seed: int
    rank_by: str = DEFAULT_RANK_BY
    fronts: dict[str, pd.DataFrame] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)


def _arrow_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding more than one Python type (e.g. 4 and "auto") as text, so parquet can store them."""
    safe = table.copy()
    for column in [c for c in safe.columns if pd.api.types.is_object_dtype(safe[c])]:
        present = safe[column].dropna()
        if len({type(v) for v in present}) > 1:
            safe[column] = safe[column].map(lambda v: v if v is None else str(v))
    return safe


def _status_counts(table: pd.DataFrame) -> str:
    counts = table["status"].value_counts()
    order = ["ok", "failed", "missing", "unreadable"]
    statuses = [s for s in order if s in counts] + sorted(s for s in counts.index if s not in order)
    return ", ".join(f"{counts[s]} {s}" for s in statuses)


def energy_sentence(table: pd.DataFrame) -> str:
    """Whether the sweep's J/token figures are measured, estimated or both (counted over ok jobs)."""
    ok = table[table["status"] == "ok"]
    measured = int(ok["j_per_output_token"].notna().sum()) if "j_per_output_token" in ok else 0
    estimated = int(ok["estimated_j_per_output_token"].notna().sum()) if "estimated_j_per_output_token" in ok else 0
    if measured and estimated:
        return (
            f"energy: {measured} ok job(s) have measured J/token, {estimated} an ESTIMATE; the two are summarised, "
            "ranked and plotted apart, never pooled"
        )
    if estimated:
        return "energy: every J/token figure is an ESTIMATE from a power model (source `estimate`), not a measurement"
    if measured:
        sources = sorted(set(ok["energy_sources"].dropna()))
        return f"energy: every J/token figure is measured (sources: {', '.join(sources)})"
    return "energy: no ok job has a J/token figure"


def _pair_line(pair: PairResult) -> str:
    head = f"A = {pair.a.text} ({len(pair.a.jobs)} ok jobs), B = {pair.b.text} ({len(pair.b.jobs)} ok jobs)"
    result = pair.comparison
    if result is None:
        return f"{head}: {pair.note}"
    word = KIND_WORD[pair.kind]
    interval = "no CI" if math.isnan(result.low) else f"95% CI {num(result.low)}, {num(result.high)}"
    line = (
        f"{head}: mean J/output-token ({word}) A {num(result.mean_a)}, B {num(result.mean_b)}; "
        f"B − A = {num(result.difference)} J [{interval}] → {result.verdict}"
    )
    if min(result.n_a, result.n_b) < MIN_CYCLES:
        line += f" (few_cycles: fewer than {MIN_CYCLES} runs on a side)"
    return f"{line}; {pair.note}" if pair.note else line


def _markdown(report: Report) -> str:
    sweep, summary = report.sweep, report.summary
    table = sweep.table
    lines = [
        "# lem report",
        "",
        f"- sweep: `{sweep.root}`",
        f"- written: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- jobs: {len(table)} ({_status_counts(table)})",
        f"- grouped by: {', '.join(f'`{k}`' for k in report.group_by) or 'nothing (one group)'}"
        f"{' (the swept parameters)' if report.group_by == sweep.swept else ''}",
        f"- statistics: mean and median over each group's ok runs with 95% percentile-bootstrap CIs "
        f"({report.resamples} resamples, seed {report.seed}); fewer than {MIN_CYCLES} runs is marked `few_cycles`",
        f"- {energy_sentence(table)}",
        "",
    ]
    impact = impact_sentence(table)
    if impact:
        lines.insert(-1, f"- {impact}")
    numbers = {g.label: g.number for g in report.groups}
    spec = METRIC_BY_NAME[report.rank_by]
    for kind in spec.columns:
        ranked = ranking(summary, report.groups, kind, report.rank_by)
        if ranked.empty:
            continue
        lines += [
            f"## Ranking by {metric_label(report.rank_by, kind)}, "
            f"{'lowest' if spec.lower_is_better else 'highest'} median first",
            "",
            "| rank | # | group | median [95% CI] | mean [95% CI] | n | workload (tokens) | marks |",
            "|---:|---:|---|---|---|---:|---|---|",
        ]
        for _, row in ranked.iterrows():
            few = "few_cycles" if row["few_cycles"] and "few_cycles" not in row["marks"] else ""
            marks = ", ".join(m for m in (row["parity"], few, row["marks"].replace(";", ", ")) if m)
            median = with_ci(row["median"], row["median_ci_low"], row["median_ci_high"])
            mean = with_ci(row["mean"], row["mean_ci_low"], row["mean_ci_high"])
            lines.append(
                f"| {row['rank']} | {numbers[row['group']]} | {row['group']} | {median} | {mean} | {row['n']} "
                f"| {row['workload']} | {marks} |"
            )
        if (ranked["parity"] != "").any():
            lines += [
                "",
                f"`tokens_differ`: these groups did not do identical work (backends: {ranked['backends'].iloc[0]}); "
                "their figures per token are not a like-for-like ranking (docs/architecture.md, workload parity).",
            ]
        lines.append("")
    lines += front_lines(report.fronts, report.groups, report.summary) + recommendation_lines(report.recommendations)
    if report.pairs:
        lines += ["## Comparisons (J / output token)", ""]
        lines += [f"- {_pair_line(pair)}" for pair in report.pairs]
        lines.append("")
    lines += ["## Groups", ""]
    for group in report.groups:
        rows = summary[summary["group"] == group.label]
        backends = ", ".join(sorted(set(group.ok.get(BACKEND_COLUMN, pd.Series(dtype=object)).dropna())))
        lines += [
            f"### {group.number}. {group.label}",
            "",
            f"{len(group.jobs)} job(s): {_status_counts(group.jobs)}. "
            f"Marks: {', '.join(group.marks()) or 'none'}. Quality flags: {group.quality_flags() or 'none'}. "
            f"Workload: {group.workload() or 'n/a'}. Backend: {backends or 'n/a'}.",
            "",
        ]
        if group.ok.empty:
            lines += ["No ok job: nothing to summarise.", ""]
            continue
        lines += ["| metric | unit | n | median [95% CI] | mean [95% CI] |", "|---|---|---:|---|---|"]
        for _, row in rows.iterrows():
            lines.append(
                f"| {metric_label(row['metric'], row['kind'])} | {row['unit']} "
                f"| {row['n']}{' (few_cycles)' if row['few_cycles'] and row['n'] else ''} "
                f"| {with_ci(row['median'], row['median_ci_low'], row['median_ci_high'])} "
                f"| {with_ci(row['mean'], row['mean_ci_low'], row['mean_ci_high'])} |"
            )
        lines.append("")
    lines += serving_lines(table, sweep.swept)
    lines += _problem_lines(report)
    figures = [f for f in report.files if f.suffix == ".png"]
    if figures:
        lines += ["## Figures", ""]
        for path in figures:
            relative = path.relative_to(report.out_dir).as_posix()
            lines.append(
                f"![{relative}]({relative})" if path.parent == report.out_dir else f"- [{relative}]({relative})"
            )
        lines.append("")
    return "\n".join(lines)


def _problem_lines(report: Report) -> list[str]:
    lines = []
    for group in report.groups:
        for _, job in group.jobs[group.jobs["status"] != "ok"].iterrows():
            phase = job.get("error_phase")
            error = job.get("error_message")
            kind = job.get("error_type")
            message = cut(f"{kind}: {error}" if isinstance(kind, str) else str(error))
            lines.append(
                f"| {job['job']} | {group.label} | {job['status']} "
                f"| {phase if isinstance(phase, str) else '—'} | {message.replace('|', '/')} |"
            )
    if not lines:
        return []
    header = ["## Failed, missing and unreadable jobs", "", "| job | group | status | phase | error |"]
    return [*header, "|---|---|---|---|---|", *lines, ""]


def write_report(
    sweep_dir: Path,
    out_dir: Path | None = None,
    *,
    group_by: list[str] | None = None,
    comparisons: Sequence[tuple[str, str]] = (),
    requirements: Sequence[str] = (),
    rank_by: str = DEFAULT_RANK_BY,
    resamples: int,
    seed: int,
) -> Report:
    """Load `sweep_dir`, summarise it by `group_by` (default: the swept parameters) and write everything to `out_dir`
    (default `sweep_dir/report`). Raises LemError for an unknown key or a folder without any job.
    """
    out_dir = out_dir or sweep_dir / "report"
    if not sweep_dir.is_dir():
        raise LemError(f"SWEEP_DIR: {str(sweep_dir)!r} is not a folder; pass the multirun/DATE/TIME folder of a sweep")
    sweep = load_sweep(sweep_dir, exclude=out_dir)
    if sweep.table.empty:
        raise LemError(
            f"SWEEP_DIR: no results.json or Hydra job folder under {str(sweep_dir)!r}; pass the folder a sweep wrote"
        )
    if rank_by not in METRIC_BY_NAME:
        raise LemError(f"--rank-by: {rank_by!r} is not a summarised metric; use one of: {', '.join(METRIC_BY_NAME)}")
    wanted = [parse_requirement(text, sweep) for text in requirements]
    keys = sweep.swept if group_by is None else group_by
    groups = make_groups(sweep, keys)
    summary = summarise(groups, resamples=resamples, seed=seed)
    pairs = [
        compare_selections(select(sweep, a), select(sweep, b), resamples=resamples, seed=seed) for a, b in comparisons
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / RESULTS_TABLE, out_dir / SUMMARY_CSV]
    _arrow_safe(sweep.table).to_parquet(files[0], index=False)
    summary.to_csv(files[1], index=False)
    report = Report(sweep, keys, groups, summary, pairs, out_dir, files, resamples, seed, rank_by)
    for kind in ("measured", "estimate"):
        front = pareto_groups(summary, kind, FRONT_X)
        if not front.empty:
            report.fronts[kind] = front
    report.recommendations = [
        rec for requirement in wanted for rec in recommend(groups, requirement, rank_by, resamples=resamples, seed=seed)
    ]
    for x_metric, name in (("output_tokens_per_s", "throughput"), ("latency_p95_s", "latency_p95")):
        report.files.append(plots.pareto(summary, groups, x_metric, out_dir / f"pareto_{name}.png"))
    report.files += [plots.bars(summary, groups, m.name, out_dir / f"bars_{m.name}.png") for m in METRICS]
    report.files += [plots.timeseries(g, out_dir / "timeseries") for g in groups]
    report.files += [plots.request_energy(g, out_dir / "request_energy") for g in groups]
    report.files.append(serving_plot(sweep.table, sweep.swept, out_dir / SERVING_PLOT))
    report.files = [f for f in report.files if f is not None]
    md_path = out_dir / SUMMARY_MD
    report.files.insert(0, md_path)
    md_path.write_text(_markdown(report))
    return report


def console_lines(report: Report) -> list[str]:
    """A short console summary: job counts, one line per group, the Pareto fronts, the answers to --require, the
    comparisons and where the files went."""
    table = report.sweep.table
    lines = [
        f"lem.report: {len(table)} job(s) under {report.sweep.root}: {_status_counts(table)}",
        f"grouped by {', '.join(report.group_by) or 'nothing'} ({len(report.groups)} group(s)); "
        f"{energy_sentence(table)}",
    ]
    summary = report.summary
    width = max(len(g.label) for g in report.groups)
    for group in report.groups:
        rows = summary[summary["group"] == group.label]
        parts = [f"  {group.label:<{width}}  n={len(group.ok)}"]
        for _, row in rows[rows["metric"].isin(["j_per_output_token", "output_tokens_per_s"])].iterrows():
            name = "J/token" if row["metric"] == "j_per_output_token" else "tok/s"
            kind = f" ({KIND_WORD[row['kind']]})" if row["kind"] else ""
            parts.append(f"{name}{kind} {with_ci(row['median'], row['median_ci_low'], row['median_ci_high'])}")
        marks = group.marks()
        lines.append("  ".join(parts + ([f"[{', '.join(marks)}]"] if marks else [])))
    broken = table[table["status"] == "unreadable"]
    if not broken.empty:
        reason = str(broken["error_message"].iloc[0])
        lines.append(f"unreadable results.json ({len(broken)}), e.g. job {broken['job'].iloc[0]}: {cut(reason)}")
    by_label = {g.label: g for g in report.groups}
    for kind, front in report.fronts.items():
        points = [
            f"#{by_label[row['group']].number} {row['group']} ({num(row['y_median'])} J/token, "
            f"{num(row['x_median'])} tok/s)"
            for _, row in front[front["on_front"]].iterrows()
        ]
        lines.append(f"Pareto front ({KIND_WORD[kind]} J/token vs throughput): {'; '.join(points)}")
    lines += [f"require {recommendation_line(rec)}" for rec in report.recommendations]
    lines += serving_console_lines(table, report.sweep.swept)
    lines += [f"compare: {_pair_line(pair)}" for pair in report.pairs]
    figures = sum(f.suffix == ".png" for f in report.files)
    lines.append(f"wrote {report.out_dir}/: {SUMMARY_MD}, {SUMMARY_CSV}, {RESULTS_TABLE} and {figures} figure(s)")
    return lines
