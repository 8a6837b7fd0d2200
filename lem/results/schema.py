"""The results.json schema as dataclasses; `from_dict` rebuilds one strictly (unknown or missing keys fail).

Units are in the names. Energy figures carry their `source`; measured (`counter`, `power_integration`) and
estimated figures are kept in separate fields and never summed together.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

RESULT_SCHEMA_VERSION = "1.0.0"
T = TypeVar("T")
MEASURED_SOURCES = ("counter", "power_integration")


@dataclass
class DomainEnergy:
    """One domain over one window. `net_energy_j` = energy_j − baseline_power_w × window duration (same domain).

    For an estimate, `baseline_power_w` is the power model's idle power and the net is the model's part above it.
    `net_clamped` is True where the subtraction went negative and was clamped to zero.
    """

    domain: str
    source: str
    energy_j: float | None
    baseline_power_w: float | None
    net_energy_j: float | None
    net_clamped: bool = False
    note: str | None = None


@dataclass
class PhaseEnergy:
    """A metered phase (model load): its duration and per-domain energy."""

    duration_s: float
    domains: list[DomainEnergy]


@dataclass
class Distribution:
    """Summary of per-request values, seconds."""

    mean: float
    p50: float
    p95: float
    p99: float
    count: int


@dataclass
class EnergyMetrics:
    """Measured totals (hardware sources only) beside estimated totals, and the per-token figures of each."""

    measured_energy_j: float | None
    measured_net_energy_j: float | None
    j_per_output_token: float | None
    net_j_per_output_token: float | None
    output_tokens_per_j: float | None
    j_per_request: float | None
    avg_power_w: float | None
    peak_power_w: float | None
    estimated_energy_j: float | None
    estimated_net_energy_j: float | None
    estimated_j_per_output_token: float | None
    estimate_model: dict[str, Any] | None
    domains: list[DomainEnergy]
    load: PhaseEnergy | None


@dataclass
class Metrics:
    """Work done in the measured window and how fast; tokens are counted from the generated ids."""

    num_requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    duration_s: float
    output_tokens_per_s: float
    requests_per_s: float
    latency_s: Distribution
    ttft_s: Distribution | None
    itl_s: Distribution | None
    timing_source: str
    peak_device_memory_bytes: int | None
    peak_host_rss_bytes: int
    flops_estimate: float | None
    flops_method: str


@dataclass
class WarmupReport:
    """How warmup went: prompts run, the CV of the last window of latencies, whether it reached the target."""

    enabled: bool
    mode: str
    prompts: int
    final_cv: float | None
    converged: bool | None


@dataclass
class Quality:
    """What a reader needs to trust or challenge the energy figures."""

    window_duration_s: float
    window_process_cpu_time_s: float
    timeseries_samples: int
    achieved_sample_rate_hz: float | None
    baseline_age_s: float | None
    baseline_from_cache: bool | None
    baseline_power_cv: dict[str, float]
    baseline_skipped_reason: str | None
    temperature_start_c: dict[str, float]
    temperature_end_c: dict[str, float]
    gpu_shared_with_other_processes: bool | None
    thermal_floor_reached: bool | None
    thermal_wait_s: float
    warmup: WarmupReport
    flags: list[str]


@dataclass
class ErrorInfo:
    """Why a run failed and in which phase."""

    phase: str
    type: str
    message: str


@dataclass
class Result:
    """One experiment's results.json."""

    result_schema_version: str
    lem_version: str
    status: str
    created_at: str
    config: dict[str, Any]
    config_hash: str
    findings: list[dict[str, Any]]
    environment: dict[str, Any]
    phases_s: dict[str, float]
    backend: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics | None = None
    energy: EnergyMetrics | None = None
    quality: Quality | None = None
    error: ErrorInfo | None = None


def _build(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) not in options:
                raise ValueError(f"{path}: null is not allowed")
            return None
        real = [option for option in options if option is not type(None)]
        if len(real) == 1:  # Optional[X]: X's own error names the exact key
            return _build(real[0], value, path)
        for option in real:
            try:
                return _build(option, value, path)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{path}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)  # type: ignore[arg-type]
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise TypeError(f"{path}: expected a list")
        return [_build(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{path}: expected an object")
        _, item = typing.get_args(hint)
        return {k: _build(item, v, f"{path}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise TypeError(f"{path}: expected {hint.__name__}, got {type(value).__name__}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], path: str = "result") -> T:
    """Rebuild `cls` from parsed JSON, checking every key and type; raises ValueError/TypeError naming the path."""
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected an object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{path}.{f.name}: missing")
            continue
        kwargs[f.name] = _build(hints[f.name], data[f.name], f"{path}.{f.name}")
    return cls(**kwargs)
