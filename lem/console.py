"""Console output: findings, the dry-run summary and the end-of-run summary table (rich)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lem.campaign.plan import PlannedJob
from lem.config.decoder import resolved_decoder
from lem.config.findings import Finding
from lem.config.schema import ExperimentConfig
from lem.impact import impact_line
from lem.results.schema import Result

_STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}
_console = Console(stderr=True, highlight=False)
log = logging.getLogger(__name__)


def print_findings(findings: Sequence[Finding], *, include_info: bool = False) -> None:
    """The findings a user must act on (warnings, then errors, so they stay in view), one line each; info findings
    go to the log (lem.log) and, with the others, to results.json, and are printed only with `include_info`."""
    for finding in findings:
        if finding.severity == "info":
            log.info(finding.line())
    for severity in ("info", "warning", "error") if include_info else ("warning", "error"):
        for finding in findings:
            if finding.severity == severity:
                _console.print(finding.line(), style=_STYLE[severity], markup=False)


def print_dry_run(config: ExperimentConfig, findings: Sequence[Finding]) -> None:
    """The validated configuration in a few lines, and the finding counts."""
    decoder = resolved_decoder(config)
    mode = "sampling" if decoder["do_sample"] else "greedy"
    table = Table(title="lem dry run: validated configuration", show_header=False)
    for key, value in [
        ("backend", config.backend.name),
        ("model", config.model),
        ("precision", config.fp_precision),
        ("prompts", f"{config.num_input_prompts} from {config.dataset.name}, <= {config.max_input_tokens} tokens"),
        ("output", f"{'exactly' if config.fixed_length else 'at most'} {config.max_output_tokens} tokens, {mode}"),
        ("warmup", f"{config.warmup.mode}" if config.warmup.enabled else "off"),
        ("baseline", config.baseline.method if config.baseline.enabled else "off"),
        ("timeseries", f"{config.timeseries.sample_rate_hz} Hz" if config.timeseries.enabled else "off"),
    ]:
        table.add_row(key, str(value))
    _console.print(table)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    verdict = "INVALID" if counts["error"] else "valid"
    _console.print(
        f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info",
        style="bold red" if counts["error"] else "green",
        markup=False,
    )


def _fmt(value: float | None, unit: str, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g} {unit}".strip()


def print_summary(result: Result, results_path: str) -> None:
    """The end-of-run table: energy with its source, J/token, throughput, latency, power, where results went."""
    metrics, energy = result.metrics, result.energy
    assert metrics is not None and energy is not None
    table = Table(title=f"lem: {result.config['backend']['name']} on {result.config['model']}", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # a long results path wraps on a narrow terminal instead of being cut
    if energy.measured_energy_j is not None:
        sources = sorted({d.source for d in energy.domains if d.source in ("counter", "power_integration")})
        table.add_row("energy (measured)", f"{_fmt(energy.measured_energy_j, 'J')} [{', '.join(sources)}]")
        table.add_row("net of idle", _fmt(energy.measured_net_energy_j, "J"))
        table.add_row("J / output token", _fmt(energy.j_per_output_token, "J"))
        table.add_row("avg / peak power", f"{_fmt(energy.avg_power_w, 'W')} / {_fmt(energy.peak_power_w, 'W')}")
    else:
        table.add_row("energy (measured)", "unavailable: no hardware counter on this machine")
    if energy.estimated_energy_j is not None:
        table.add_row(
            "energy (ESTIMATE)",
            f"{_fmt(energy.estimated_energy_j, 'J')} host CPU, power model; "
            f"{_fmt(energy.estimated_j_per_output_token, 'J')} / token",
        )
    table.add_row(
        "tokens in / out", f"{metrics.input_tokens} / {metrics.output_tokens} ({metrics.num_requests} requests)"
    )
    table.add_row("throughput", f"{metrics.output_tokens_per_s:.1f} tok/s, {metrics.requests_per_s:.2f} req/s")
    table.add_row("latency p50 / p95", f"{_fmt(metrics.latency_s.p50, 's')} / {_fmt(metrics.latency_s.p95, 's')}")
    table.add_row("window", _fmt(metrics.duration_s, "s"))
    if (impact := impact_line(result.impact)) is not None:
        table.add_row("per 1M output tokens", impact)
    table.add_row("results", results_path)
    Console(highlight=False).print(table)


def print_campaign_plan(
    name: str | None, jobs: Sequence[tuple[PlannedJob, str, Sequence[Finding]]], full: bool
) -> None:
    """The run order; with `full` (dry run) every job's findings too."""
    table = Table(title=f"campaign {name}: {len(jobs)} job(s) in run order", show_lines=False)
    for column in ("#", "cycle", "job", "grid point", "errors", "warnings"):
        table.add_column(column)
    for planned, job_dir, findings in jobs:
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning")}
        table.add_row(
            str(planned.position),
            str(planned.cycle),
            job_dir,
            " ".join(planned.overrides),
            str(counts["error"]),
            str(counts["warning"]),
            style="red" if counts["error"] else None,
        )
    _console.print(table)
    if full:
        for planned, _, findings in jobs:
            for finding in findings:
                if finding.severity != "info":
                    _console.print(
                        f"#{planned.position} {finding.line()}", style=_STYLE[finding.severity], markup=False
                    )


def print_campaign_summary(name: str | None, sweep_dir: Path, jobs: Sequence[tuple[str, PlannedJob, Path]]) -> None:
    """Counts per status and the jobs that did not finish ok."""
    counts: dict[str, int] = {}
    for status, _, _ in jobs:
        counts[status] = counts.get(status, 0) + 1
    line = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    ok = set(counts) <= {"ok", "skipped"}
    _console.print(f"campaign {name}: {line} -> {sweep_dir}", style="green" if ok else "bold red", markup=False)
    for status, planned, job_dir in jobs:
        if status not in ("ok", "skipped"):
            _console.print(
                f"  {status}: #{planned.position} {' '.join(planned.overrides)} ({job_dir})", style="red", markup=False
            )
