"""Console output: findings, the dry-run summary and the end-of-run summary table (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from lem.config.rules import Finding, resolved_decoder
from lem.config.schema import ExperimentConfig

_STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}
_console = Console(stderr=True, highlight=False)


def print_findings(findings: Sequence[Finding]) -> None:
    """One line per finding, errors last so they stay in view."""
    order = {"info": 0, "warning": 1, "error": 2}
    for finding in sorted(findings, key=lambda f: order[f.severity]):
        _console.print(finding.line(), style=_STYLE[finding.severity], markup=False)


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
    _console.print(f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info",
                   style="bold red" if counts["error"] else "green", markup=False)
