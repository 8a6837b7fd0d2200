"""Every job of a sweep as one tidy table, one row per job, from lem.results' reader (`job_dirs`, `read_job`).

A job is a folder holding results.json, or a Hydra job folder (`.hydra/`) without one (status `missing`). A file that
does not parse or does not match the schema (strict) is a row with status `unreadable` and the reason in
`error_message`; nothing is dropped silently.

Columns: `job` (path relative to the sweep folder), `job_dir`, `status`, one column per swept parameter under its
dotted key, the metrics (units in the names), measured and estimated energy in separate columns with
`energy_sources`, the energy per request's p50 and p99 (`request_p50_j`, ...), prefill J per input token and
decode J per output token (energy.phases=split, `prefill_j_per_input_token`, ...), the whole node from its BMC
apart from them (energy.node: `node_energy_j`, `node_net_energy_j`, `node_avg_power_w`, `rest_of_node_j`), the
quality `flags` (";"-joined), the
impact figures (CO2e and cost per 1M output tokens, measured and `estimated_` apart) with their inputs
(`impact_<input>`), the error of a failed job and `config.<dotted key>` for the whole resolved config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lem.numbers import ratio
from lem.report.serving import serving_columns
from lem.results.reader import HYDRA_FOLDER, JobResult, job_dirs, read_job
from lem.results.schema import RequestEnergySummary, Result
from lem.results.writer import REQUESTS_FILE, TIMESERIES_FILE

OVERRIDES_FILE = Path(HYDRA_FOLDER) / "overrides.yaml"
#: Config keys that never define a configuration point (besides any key naming a seed or a cycle).
_NOT_A_PARAMETER = ("config_name", "cache_dir", "dry_run", "schema_version")


@dataclass
class Sweep:
    """The loaded sweep: the job table and the swept parameters (columns of the table, in sweep order)."""

    root: Path
    table: pd.DataFrame
    swept: list[str]


def is_parameter(key: str) -> bool:
    """False for keys that never define a configuration point: seeds, cycle indices, campaign bookkeeping, and the
    impact inputs (they change figures computed after the run, not the run)."""
    parts = key.lower().split(".")
    if parts[0] in ("campaign", "hydra", "impact") or key in _NOT_A_PARAMETER:
        return False
    return not any("seed" in part or "cycle" in part for part in parts)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists and empty dicts become JSON text so every value is a scalar."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        elif isinstance(value, list | dict):
            flat[dotted] = json.dumps(value, default=str)
        else:
            flat[dotted] = value
    return flat


def parse_overrides(lines: list[Any]) -> dict[str, str]:
    """Hydra override strings (`+key=value`, `key=value`) to {key: value}; `~key` deletions are left out."""
    parsed = {}
    for line in lines:
        key, sep, value = str(line).partition("=")
        if sep and not key.startswith("~"):
            parsed[key.lstrip("+")] = value
    return parsed


def _overrides(job_dir: Path) -> dict[str, str]:
    """The job's overrides from `.hydra/overrides.yaml`; {} when it has none or it is not readable."""
    path = job_dir / OVERRIDES_FILE
    if not path.is_file():
        return {}
    try:
        return parse_overrides(yaml.safe_load(path.read_text()) or [])
    except (OSError, yaml.YAMLError):
        return {}


def _job_row(job: JobResult) -> dict[str, Any]:
    """The row of one job: its result's columns, or the status and reason of a job without a readable result."""
    if job.result is None:
        return {"status": job.status, "error_message": job.reason}
    return _result_row(job.result)


#: Result fields the table carries as they are, under their own names, per block (in column order).
_RESULT_COLUMNS = ("status", "created_at", "config_hash")
_METRICS_COLUMNS = (
    "num_requests",
    "input_tokens",
    "output_tokens",
    "duration_s",
    "output_tokens_per_s",
    "requests_per_s",
)
_ENERGY_COLUMNS = (
    "measured_energy_j",
    "measured_net_energy_j",
    "j_per_output_token",
    "net_j_per_output_token",
    "output_tokens_per_j",
    "avg_power_w",
    "peak_power_w",
    "estimated_energy_j",
    "estimated_net_energy_j",
    "estimated_j_per_output_token",
)
#: energy.phases=split: prefill and decode energy per token (lem.phases), measured and `estimated_` apart.
_PHASE_COLUMNS = (
    "prefill_j_per_input_token",
    "prefill_net_j_per_input_token",
    "decode_j_per_output_token",
    "decode_net_j_per_output_token",
    "estimated_prefill_j_per_input_token",
    "estimated_decode_j_per_output_token",
)
#: The node figure's columns (energy.node: the whole node from its BMC, apart from the domains), as `node_<name>`.
_NODE_COLUMNS = ("energy_j", "net_energy_j", "avg_power_w")
_QUALITY_COLUMNS = ("window_duration_s", "timeseries_samples")
_IMPACT_COLUMNS = (
    "kwh_per_1m_output_tokens",
    "g_co2e_per_1m_output_tokens",
    "energy_cost_per_1m_output_tokens",
    "estimated_kwh_per_1m_output_tokens",
    "estimated_g_co2e_per_1m_output_tokens",
    "estimated_energy_cost_per_1m_output_tokens",
    "instance_cost_per_1m_output_tokens",
)
#: The inputs stored beside the impact figures, as `impact_<name>` columns.
_IMPACT_INPUTS = ("grid_intensity_g_per_kwh", "pue", "price_per_kwh", "gpu_hour_price", "currency")


def _copy(block: Any, names: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    """{prefix + name: block.name} for each of `names`."""
    return {f"{prefix}{name}": getattr(block, name) for name in names}


def _result_row(result: Result) -> dict[str, Any]:
    """The columns of one result: fields copied as they are, a few summarised (latency percentiles, energy sources,
    flags) and the one figure the file does not hold, estimated output tokens per J."""
    row = _copy(result, _RESULT_COLUMNS)
    if result.error is not None:
        row.update(_copy(result.error, ("phase", "type", "message"), "error_"))
    metrics, energy, quality = result.metrics, result.energy, result.quality
    if metrics is not None:
        row.update(_copy(metrics, _METRICS_COLUMNS))
        row.update(
            latency_p50_s=metrics.latency_s.p50,
            latency_p95_s=metrics.latency_s.p95,
            latency_p99_s=metrics.latency_s.p99,
            ttft_p50_s=metrics.ttft_s.p50 if metrics.ttft_s is not None else None,
            timing_source=metrics.timing_source,
        )
    if energy is not None:
        row["energy_sources"] = "+".join(sorted({d.source for d in energy.domains}))
        row["energy_domains"] = ", ".join(f"{d.domain}:{d.source}" for d in energy.domains)
        row.update(_copy(energy, _ENERGY_COLUMNS))
        output_tokens = metrics.output_tokens if metrics is not None else None
        row["estimated_output_tokens_per_j"] = ratio(output_tokens, energy.estimated_energy_j)
        node = energy.node
        row.update({f"node_{name}": getattr(node, name) if node is not None else None for name in _NODE_COLUMNS})
        row["rest_of_node_j"] = node.rest_of_node_j if node is not None else None
        if energy.phases is not None:
            row.update(_copy(energy.phases, _PHASE_COLUMNS))
        row.update(_request_energy_columns(energy.requests))
    if quality is not None:
        row["flags"] = ";".join(quality.flags)
        row.update(_copy(quality, _QUALITY_COLUMNS))
    if result.impact is not None:
        row.update(_copy(result.impact, _IMPACT_COLUMNS))
        row.update(_copy(result.impact, _IMPACT_INPUTS, "impact_"))
    row.update(serving_columns(result))
    row.update(flatten(result.config, "config."))
    return row


def _request_energy_columns(requests: RequestEnergySummary | None) -> dict[str, Any]:
    """p50 and p99 of the energy per request, joules (`request_p50_j`, `request_p99_j` and `estimated_` twins)."""
    spreads = {"": None, "estimated_": None}
    if requests is not None:
        spreads = {"": requests.energy_j, "estimated_": requests.estimated_energy_j}
    return {
        f"{prefix}request_{name}_j": getattr(spread, name) if spread is not None else None
        for prefix, spread in spreads.items()
        for name in ("p50", "p99")
    }


def typed_value(text: str) -> Any:
    """An override's value as Hydra reads a plain value (`4` → 4, `null` → None); anything else stays text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, list | dict) else value


def load_sweep(root: Path, exclude: Path | None = None) -> Sweep:
    """Load every job under `root` (skipping `exclude`, the report folder) into a Sweep."""
    rows, overrides = [], []
    for job_dir in job_dirs(root, exclude):
        row = {"job": str(job_dir.relative_to(root)), "job_dir": str(job_dir), **_job_row(read_job(job_dir))}
        row["has_timeseries"] = (job_dir / TIMESERIES_FILE).is_file()
        row["has_requests"] = (job_dir / REQUESTS_FILE).is_file()
        rows.append(row)
        overrides.append(_overrides(job_dir))
    swept = _swept_keys(overrides)
    if swept:
        for row, job_overrides in zip(rows, overrides, strict=True):
            row.update({k: typed_value(job_overrides[k]) for k in swept if k in job_overrides})
    else:
        swept = _varying_config_keys(rows)
        for row in rows:
            row.update({k: row.get(f"config.{k}") for k in swept})
    table = pd.DataFrame(rows)
    for key in swept:
        table[key] = table[key].astype(object).where(table[key].notna(), None)
    return Sweep(root, table, swept)


def _swept_keys(overrides: list[dict[str, str]]) -> list[str]:
    """Override keys whose value varies across jobs (a job without the key counts as a value), in first-seen order."""
    keys = list(dict.fromkeys(k for job in overrides for k in job))
    return [k for k in keys if is_parameter(k) and len({job.get(k) for job in overrides}) > 1]


def _varying_config_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Without overrides files: config keys whose value varies across the loaded results."""
    keys = list(dict.fromkeys(k for row in rows for k in row if k.startswith("config.")))
    varying = [
        k for k in keys if len({json.dumps(row.get(k), default=str) for row in rows if "config_hash" in row}) > 1
    ]
    return [k.removeprefix("config.") for k in varying if is_parameter(k.removeprefix("config."))]
