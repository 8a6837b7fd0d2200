"""The results.json schema as dataclasses; `from_dict` rebuilds one strictly (unknown or missing keys fail).

Units are in the names. Energy figures carry their `source`; measured (`counter`, `power_integration`) and
estimated figures are kept in separate fields and never summed together.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

RESULT_SCHEMA_VERSION = "1.1.0"  # 1.1: energy.requests, energy.phases, energy.node (optional, additive)
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
class EnergySpread:
    """Summary of per-request energies, joules: mean, p50/p90/p99 (linear interpolation), min and max."""

    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float


@dataclass
class RequestEnergySummary:
    """The window's energy shared among its requests (one row each in `file`, beside results.json).

    `energy_j` is over the measured domains and sums to measured_energy_j; `estimated_energy_j` over estimates, kept
    apart. `method` says how the window was cut into intervals and how each domain's energy was divided among them;
    `processed_tokens` defines the tokens an interval's energy is shared by.
    """

    file: str
    requests: int
    method: str
    processed_tokens: str
    energy_j: EnergySpread | None
    net_energy_j: EnergySpread | None
    estimated_energy_j: EnergySpread | None


@dataclass
class NodeEnergy:
    """The whole node's energy over the measured window, from its BMC's power readings integrated over time (`source`
    power_integration; `sensor` names the command, `sample_rate_hz` the readings per second achieved, `samples` those
    inside the window). The node includes the GPUs, CPUs and memory, so this figure is never added to
    `measured_energy_j` or listed in `domains`. `net_energy_j` = energy_j − baseline_power_w × window duration (the
    node's idle power, from the same sensor), clamped at 0 (`net_clamped`); null without a node baseline.
    `rest_of_node_j` = energy_j − measured_energy_j: what the node drew beyond the metered domains (fans, disks,
    network, power-supply losses, unmetered devices); null where measured energy is null, and negative only where
    the sensors disagree. Joules and watts.
    """

    source: str
    sensor: str
    energy_j: float
    avg_power_w: float
    baseline_power_w: float | None
    net_energy_j: float | None
    net_clamped: bool
    sample_rate_hz: float | None
    samples: int
    rest_of_node_j: float | None


@dataclass
class PhaseDomainEnergy:
    """One domain's energy split into prefill (one pass) and decode (the measured window minus one prefill pass),
    joules, gross and net of the same domain's idle power. Null where a reading is missing or a decode difference
    went negative (flagged `decode_energy_negative:<domain>` / `decode_net_energy_negative:<domain>`)."""

    domain: str
    source: str
    prefill_j: float | None
    prefill_net_j: float | None
    decode_j: float | None
    decode_net_j: float | None


@dataclass
class PhaseSplit:
    """Prefill and decode energy apart (`energy.phases=split`); `method` says how, with this run's numbers.

    Prefill: `prefill_passes` passes of every prompt with one output token in one window of `prefill_window_s`,
    divided by the passes (`prefill_duration_s` per pass). Decode: the measured window minus one prefill pass. Totals
    follow EnergyMetrics: the plain ones over measured domains (`counter`, `power_integration`), the `estimated_` ones
    over estimates, never mixed. J per input token divides by the input tokens of one pass (`prefill_input_tokens`),
    J per output token by `decode_output_tokens` (output tokens − requests). A negative decode total is null and
    flagged (`decode_energy_negative`, `decode_net_energy_negative`, and their `estimated_` twins).
    """

    method: str
    prefill_passes: int
    prefill_window_s: float
    prefill_duration_s: float
    prefill_input_tokens: int
    decode_output_tokens: int
    prefill_energy_j: float | None
    prefill_net_energy_j: float | None
    decode_energy_j: float | None
    decode_net_energy_j: float | None
    prefill_j_per_input_token: float | None
    prefill_net_j_per_input_token: float | None
    decode_j_per_output_token: float | None
    decode_net_j_per_output_token: float | None
    estimated_prefill_energy_j: float | None
    estimated_prefill_net_energy_j: float | None
    estimated_decode_energy_j: float | None
    estimated_decode_net_energy_j: float | None
    estimated_prefill_j_per_input_token: float | None
    estimated_decode_j_per_output_token: float | None
    domains: list[PhaseDomainEnergy]


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
    requests: RequestEnergySummary | None = None
    phases: PhaseSplit | None = None
    #: The whole node from its BMC (config energy.node); it includes the domains above, so it is never in their totals.
    node: NodeEnergy | None = None
    #: Why there is no `node` figure where one was asked for (energy.node=auto without ipmitool, a failed sensor).
    node_skipped_reason: str | None = None


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
    #: "shared" (a process outside lem's process tree computes on a metered GPU), "exclusive", or "unknown" (none of
    #: NVML's process ids is lem's while lem holds the GPU: ids from another namespace, e.g. a container); None where
    #: not checked. `gpu_shared_with_other_processes` is True, False or None accordingly.
    gpu_sharing: str | None = None
    #: Samples per second behind each GPU domain of source `power_integration` in the measured window.
    power_integration_rate_hz: dict[str, float] = field(default_factory=dict)


@dataclass
class Impact:
    """CO2e and cost per 1M output tokens, with the inputs they came from (config `impact.*`) stored beside them.

    kWh per 1M output tokens = J per output token x 1e6 / 3.6e6 x `pue`; g CO2e = kWh x `grid_intensity_g_per_kwh`;
    energy cost = kWh x `price_per_kwh`. The figures follow the energy they come from, as in EnergyMetrics: the plain
    ones from measured energy (`counter`, `power_integration`), the `estimated_` ones from lem's power model, never
    mixed; null where that energy or the input is missing. The instance cost is time, not energy: `gpu_hour_price`
    x `gpus` x the measured window, per 1M output tokens (null without a price or a GPU).
    """

    grid_intensity_g_per_kwh: float | None
    pue: float
    price_per_kwh: float | None
    gpu_hour_price: float | None
    currency: str
    gpus: int
    kwh_per_1m_output_tokens: float | None = None
    g_co2e_per_1m_output_tokens: float | None = None
    energy_cost_per_1m_output_tokens: float | None = None
    estimated_kwh_per_1m_output_tokens: float | None = None
    estimated_g_co2e_per_1m_output_tokens: float | None = None
    estimated_energy_cost_per_1m_output_tokens: float | None = None
    instance_cost_per_1m_output_tokens: float | None = None


@dataclass
class Percentiles:
    """Summary of per-request values of a serving window, seconds: mean and p50/p90/p99 (linear interpolation)."""

    mean: float
    p50: float
    p90: float
    p99: float
    count: int


@dataclass
class ServingMetrics:
    """A serving run (scenario=serving): a live server under a stated load, measured over a steady-state window.

    Times are seconds from the load's start. Figures are over the window (`window_rule`) unless named otherwise:
    latencies over the requests that completed in it, `output_tokens_in_window` counts the tokens that arrived in it
    (from the server's usage counts). `target_request_rate_per_s` is null for request_rate=inf (all at once);
    `achieved_request_rate_per_s` is (requests - 1) / (last send - first send) over the whole run. Goodput counts the
    window's completed requests that met both SLOs. Energy per request is the window's energy divided by the requests
    completed in it (`energy_per_request_method`); measured and estimated figures are kept apart as in EnergyMetrics.
    """

    server: str
    request_rate: str
    target_request_rate_per_s: float | None
    achieved_request_rate_per_s: float | None
    max_concurrency: int | None
    num_requests: int
    window_rule: str
    window_closed_at: str
    window_start_s: float
    window_end_s: float
    window_duration_s: float
    requests_sent_in_window: int
    requests_completed_in_window: int
    output_tokens_in_window: int
    output_tokens_per_s: float
    completed_requests_per_s: float
    goodput_requests_per_s: float
    slo_attainment: float | None
    ttft_slo_s: float
    tpot_slo_s: float
    ttft_s: Percentiles | None
    tpot_s: Percentiles | None
    itl_s: Percentiles | None
    e2e_latency_s: Percentiles | None
    send_lag_s: Percentiles | None
    energy_per_request_method: str
    j_per_request: float | None
    net_j_per_request: float | None
    estimated_j_per_request: float | None
    estimated_net_j_per_request: float | None
    load_duration_s: float
    cancelled_requests: int
    server_start_s: float | None
    server_cpu_time_s: float | None
    requests_file: str | None = None
    #: Whether the server kept up in the window: requests completed in it >= 90 % of those sent in it (a server that
    #: falls behind queues work, and its window is no steady state); None where the window closed at a completion.
    server_kept_up: bool | None = None


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
    impact: Impact | None = None
    serving: ServingMetrics | None = None

    def __post_init__(self) -> None:
        self.config = json_safe(self.config)


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float as a string ("inf", "-inf", "nan"): JSON has no Infinity or NaN, and a
    config may hold one (scenario.request_rate=inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


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
