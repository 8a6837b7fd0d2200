"""Console output: findings, the dry-run summary and the end-of-run summary table (rich)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lem.campaign.plan import PlannedJob
from lem.config.decoder import resolved_decoder
from lem.config.findings import Finding
from lem.config.machine import JobTarget
from lem.config.schema import ExperimentConfig
from lem.impact import impact_line
from lem.results.schema import EnergyMetrics, Result
from lem.results.serving import Percentiles, ServingMetrics

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


def print_dry_run(
    config: ExperimentConfig, findings: Sequence[Finding], target: JobTarget | None = None, engine: str | None = None
) -> None:
    """The validated configuration in a few lines, where the hardware rules were judged (this machine, or a SLURM
    launcher's request per job: `target`), the planned engine (`engine`: its key and whether it would load; an
    estimate that leaves out what only load knows, such as the device), and the finding counts."""
    decoder = resolved_decoder(config)
    mode = "sampling" if decoder["do_sample"] else "greedy"
    table = Table(title="lem dry run: validated configuration", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    hardware = "this machine" if target is None else f"hydra/launcher={target.launcher}: {target.request}; "
    if target is not None:
        hardware += "compute capability and memory are judged on the job's node"
    rows = [
        ("backend", config.backend.name),
        ("model", config.model),
        ("precision", config.fp_precision),
        ("prompts", f"{config.num_input_prompts} from {config.dataset.name}, <= {config.max_input_tokens} tokens"),
        ("output", f"{'exactly' if config.fixed_length else 'at most'} {config.max_output_tokens} tokens, {mode}"),
        ("warmup", f"{config.warmup.mode}" if config.warmup.enabled else "off"),
        ("baseline", config.baseline.method if config.baseline.enabled else "off"),
        ("timeseries", f"{config.timeseries.sample_rate_hz} Hz" if config.timeseries.enabled else "off"),
        ("hardware rules", hardware),
    ]
    if engine is not None:
        rows.append(("engine (planned)", engine))
    for key, value in rows:
        table.add_row(key, str(value))
    _console.print(table)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    verdict = "INVALID" if counts["error"] else "valid"
    _console.print(
        f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info",
        style="bold red" if counts["error"] else "green",
        markup=False,
    )


def print_line(text: str) -> None:
    """One plain line on stdout, where the progress bar goes (before a metered phase that shows no bar)."""
    Console(highlight=False).print(text, markup=False)


def _fmt(value: float | None, unit: str, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g} {unit}".strip()


def _node_row(energy: EnergyMetrics) -> tuple[str, str] | None:
    """The node's row (energy.node, kept apart from the domains it includes) with the rest of the node beyond the
    metered domains; or why there is none where it was asked for; None where it was not."""
    node = energy.node
    if node is None:
        reason = energy.node_skipped_reason
        return ("node (BMC)", f"unavailable: {reason}") if reason is not None else None
    rest = "" if node.rest_of_node_j is None else f"; rest of node {_fmt(node.rest_of_node_j, 'J')}"
    return "node (BMC)", f"{_fmt(node.energy_j, 'J')}, {_fmt(node.avg_power_w, 'W')} ({node.source}){rest}"


def _request_row(energy: EnergyMetrics) -> tuple[str, str] | None:
    """Energy per request, p50 / p99 (measured, else the labelled estimate), from lem.attribution's table."""
    requests = energy.requests
    if requests is None:
        return None
    label, spread = ("J / request p50 / p99", requests.energy_j)
    if spread is None:
        label, spread = ("J / request p50 / p99 (ESTIMATE)", requests.estimated_energy_j)
    if spread is None:
        return None
    return label, f"{_fmt(spread.p50, 'J')} / {_fmt(spread.p99, 'J')} ({requests.file})"


def _p50_p99(percentiles: Percentiles | None) -> str:
    return "n/a" if percentiles is None else f"{_fmt(percentiles.p50, 's')} / {_fmt(percentiles.p99, 's')}"


def _serving_rows(serving: ServingMetrics) -> list[tuple[str, str]]:
    """A serving run's figures over its steady-state window: rates, completions, goodput, TTFT/TPOT, J per request
    (measured, and the labelled estimate, apart)."""
    rate = serving.target_request_rate_per_s
    target = "inf (all at once)" if rate is None else f"{rate:g} req/s"
    achieved = _fmt(serving.achieved_request_rate_per_s, "req/s")
    behind = "; the server fell behind (no steady state)" if serving.server_kept_up is False else ""
    attained = "" if serving.slo_attainment is None else f", {serving.slo_attainment:.0%} of those completed"
    rows = [
        ("request rate", f"target {target}, achieved {achieved}"),
        (
            "serving window",
            f"{_fmt(serving.window_duration_s, 's')}: {serving.requests_completed_in_window} requests completed, "
            f"{serving.requests_sent_in_window} sent{behind}",
        ),
        (
            "goodput",
            f"{serving.goodput_requests_per_s:.2f} req/s within TTFT <= {serving.ttft_slo_s:g} s and TPOT <= "
            f"{serving.tpot_slo_s:g} s{attained}",
        ),
        ("TTFT p50 / p99", _p50_p99(serving.ttft_s)),
        ("TPOT p50 / p99", _p50_p99(serving.tpot_s)),
    ]
    if serving.j_per_request is not None:
        rows.append(("J / request", f"{_fmt(serving.j_per_request, 'J')}, net {_fmt(serving.net_j_per_request, 'J')}"))
    if serving.estimated_j_per_request is not None:
        rows.append(("J / request (ESTIMATE)", f"{_fmt(serving.estimated_j_per_request, 'J')} host CPU, power model"))
    if serving.j_per_request is None and serving.estimated_j_per_request is None:
        rows.append(("J / request", "unavailable: no energy reading"))
    return rows


def print_summary(result: Result, results_path: str) -> None:
    """The end-of-run table: energy with its source, J/token, throughput, latency, power, where results went; for a
    serving run also its rates, goodput, TTFT/TPOT and J per request."""
    metrics, energy = result.metrics, result.energy
    assert metrics is not None and energy is not None
    table = Table(title=f"lem: {result.config['backend']['name']} on {result.config['model']}", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # a long results path wraps on a narrow terminal instead of being cut
    if energy.measured_energy_j is not None:
        sources = sorted({d.source for d in energy.domains if d.source in ("counter", "power_integration")})
        table.add_row("energy (measured)", escape(f"{_fmt(energy.measured_energy_j, 'J')} [{', '.join(sources)}]"))
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
    if (node_row := _node_row(energy)) is not None:
        table.add_row(*node_row)
    if (request_row := _request_row(energy)) is not None:
        table.add_row(*request_row)
    phases = energy.phases
    if phases is not None:
        measured_split = phases.prefill_energy_j is not None
        label = "" if measured_split else " (ESTIMATE)"
        prefill = phases.prefill_j_per_input_token if measured_split else phases.estimated_prefill_j_per_input_token
        decode = phases.decode_j_per_output_token if measured_split else phases.estimated_decode_j_per_output_token
        if prefill is not None:
            table.add_row(f"prefill J / input token{label}", _fmt(prefill, "J"))
            table.add_row(
                f"decode J / output token{label}", _fmt(decode, "J") if decode is not None else "n/a (see flags)"
            )
    table.add_row(
        "tokens in / out", f"{metrics.input_tokens} / {metrics.output_tokens} ({metrics.num_requests} requests)"
    )
    table.add_row("throughput", f"{metrics.output_tokens_per_s:.1f} tok/s, {metrics.requests_per_s:.2f} req/s")
    table.add_row("latency p50 / p95", f"{_fmt(metrics.latency_s.p50, 's')} / {_fmt(metrics.latency_s.p95, 's')}")
    table.add_row("window", _fmt(metrics.duration_s, "s"))
    for row in _serving_rows(result.serving) if result.serving is not None else []:
        table.add_row(*row)
    if (impact := impact_line(result.impact)) is not None:
        table.add_row("per 1M output tokens", impact)
    table.add_row("results", results_path)
    Console(highlight=False).print(table)


def print_campaign_plan(
    name: str | None,
    jobs: Sequence[tuple[PlannedJob, str, Sequence[Finding]]],
    full: bool,
    engine_loads: str | None = None,
) -> None:
    """The run order, then `engine_loads` (how many jobs load an engine); with `full` (dry run) every job's findings
    too."""
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
    if engine_loads is not None:
        _console.print(engine_loads, markup=False)
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
