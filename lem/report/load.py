"""Find every job of a sweep and load its results.json into one tidy table: one row per job.

A job is a folder holding results.json, or a Hydra job folder (`.hydra/`) without one (status `missing`). A file that
does not parse or does not match the schema (`from_dict(Result, ...)`, strict) is a row with status `unreadable` and
the reason in `error_message`; nothing is dropped silently.

Columns: `job` (path relative to the sweep folder), `job_dir`, `status`, one column per swept parameter under its
dotted key, the metrics (units in the names), measured and estimated energy in separate columns with
`energy_sources`, the quality `flags` (";"-joined), the error of a failed job, `config.<dotted key>` for the whole
resolved config and `campaign.<key>` where a result carries a campaign block.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lem.results.schema import Result, from_dict
from lem.results.writer import RESULTS_FILE, TIMESERIES_FILE

OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
#: Config keys that never define a configuration point (besides any key naming a seed or a cycle).
_NOT_A_PARAMETER = ("config_name", "cache_dir", "dry_run", "schema_version")


@dataclass(frozen=True)
class Metric:
    """A per-job figure the report summarises; `columns` maps the energy kind ("" for none) to its table column."""

    name: str
    label: str
    unit: str
    lower_is_better: bool
    columns: dict[str, str]


METRICS = (
    Metric(
        "j_per_output_token",
        "J / output token",
        "J",
        True,
        {"measured": "j_per_output_token", "estimate": "estimated_j_per_output_token"},
    ),
    Metric(
        "output_tokens_per_j",
        "output tokens / J",
        "tok/J",
        False,
        {"measured": "output_tokens_per_j", "estimate": "estimated_output_tokens_per_j"},
    ),
    Metric("output_tokens_per_s", "throughput", "tok/s", False, {"": "output_tokens_per_s"}),
    Metric("latency_p50_s", "latency p50", "s", True, {"": "latency_p50_s"}),
    Metric("latency_p95_s", "latency p95", "s", True, {"": "latency_p95_s"}),
    Metric(
        "net_energy_j",
        "net energy",
        "J",
        True,
        {"measured": "measured_net_energy_j", "estimate": "estimated_net_energy_j"},
    ),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}


@dataclass
class Sweep:
    """The loaded sweep: the job table and the swept parameters (columns of the table, in sweep order)."""

    root: Path
    table: pd.DataFrame
    swept: list[str]


def is_parameter(key: str) -> bool:
    """False for keys that never define a configuration point: seeds, cycle indices, campaign bookkeeping."""
    parts = key.lower().split(".")
    if parts[0] in ("campaign", "hydra") or key in _NOT_A_PARAMETER:
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


def _overrides(job_dir: Path, campaign: dict[str, Any]) -> dict[str, str]:
    """The job's overrides from `.hydra/overrides.yaml`, else from its campaign block; {} when neither is readable."""
    path = job_dir / OVERRIDES_FILE
    if path.is_file():
        try:
            return parse_overrides(yaml.safe_load(path.read_text()) or [])
        except (OSError, yaml.YAMLError):
            return {}
    grid = campaign.get("overrides")
    if isinstance(grid, dict):
        return {str(k): str(v) for k, v in grid.items()}
    return parse_overrides(grid) if isinstance(grid, list) else {}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def _result_row(result: Result) -> dict[str, Any]:
    row: dict[str, Any] = {
        "status": result.status,
        "created_at": result.created_at,
        "config_hash": result.config_hash,
    }
    if result.error is not None:
        row.update(error_phase=result.error.phase, error_type=result.error.type, error_message=result.error.message)
    metrics, energy, quality = result.metrics, result.energy, result.quality
    if metrics is not None:
        row.update(
            num_requests=metrics.num_requests,
            input_tokens=metrics.input_tokens,
            output_tokens=metrics.output_tokens,
            duration_s=metrics.duration_s,
            output_tokens_per_s=metrics.output_tokens_per_s,
            requests_per_s=metrics.requests_per_s,
            latency_p50_s=metrics.latency_s.p50,
            latency_p95_s=metrics.latency_s.p95,
            latency_p99_s=metrics.latency_s.p99,
            ttft_p50_s=metrics.ttft_s.p50 if metrics.ttft_s is not None else None,
            timing_source=metrics.timing_source,
        )
    if energy is not None:
        sources = sorted({d.source for d in energy.domains})
        row.update(
            energy_sources="+".join(sources),
            energy_domains=", ".join(f"{d.domain}:{d.source}" for d in energy.domains),
            measured_energy_j=energy.measured_energy_j,
            measured_net_energy_j=energy.measured_net_energy_j,
            j_per_output_token=energy.j_per_output_token,
            net_j_per_output_token=energy.net_j_per_output_token,
            output_tokens_per_j=energy.output_tokens_per_j,
            avg_power_w=energy.avg_power_w,
            peak_power_w=energy.peak_power_w,
            estimated_energy_j=energy.estimated_energy_j,
            estimated_net_energy_j=energy.estimated_net_energy_j,
            estimated_j_per_output_token=energy.estimated_j_per_output_token,
            estimated_output_tokens_per_j=_ratio(
                metrics.output_tokens if metrics is not None else None, energy.estimated_energy_j
            ),
        )
    if quality is not None:
        row.update(
            flags=";".join(quality.flags),
            window_duration_s=quality.window_duration_s,
            timeseries_samples=quality.timeseries_samples,
        )
    row.update(flatten(result.config, "config."))
    return row


def _campaign(result: Result) -> dict[str, Any]:
    """The result's campaign block as a dict, {} where the schema or the result has none."""
    block = getattr(result, "campaign", None)
    if block is None:
        return {}
    return dataclasses.asdict(block) if dataclasses.is_dataclass(block) else dict(block)


def _load_job(job_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The row of one job and its overrides."""
    path = job_dir / RESULTS_FILE
    if not path.is_file():
        missing = {"status": "missing", "error_message": f"no {RESULTS_FILE} (the job did not finish)"}
        return missing, _overrides(job_dir, {})
    try:
        result = from_dict(Result, json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as ex:
        return {"status": "unreadable", "error_message": f"{type(ex).__name__}: {ex}"}, _overrides(job_dir, {})
    campaign = _campaign(result)
    row = _result_row(result)
    row.update({f"campaign.{k}": v for k, v in flatten(campaign).items() if k != "overrides"})
    return row, _overrides(job_dir, campaign)


def job_dirs(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every folder under `root` (itself included) holding results.json or `.hydra/`, outside `exclude`."""
    found = {p.parent for p in root.rglob(RESULTS_FILE)} | {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    if exclude is not None:
        found = {d for d in found if not d.resolve().is_relative_to(exclude.resolve())}
    return sorted(
        found, key=lambda d: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in d.relative_to(root).parts]
    )


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
        row, job_overrides = _load_job(job_dir)
        row = {"job": str(job_dir.relative_to(root)), "job_dir": str(job_dir), **row}
        row["has_timeseries"] = (job_dir / TIMESERIES_FILE).is_file()
        rows.append(row)
        overrides.append(job_overrides)
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
