"""The results.json schema as dataclasses (the serving block in lem.results.serving); lem.results.strict's
`from_dict` rebuilds one strictly (unknown or missing keys fail).

Units are in the names. Energy figures carry their `source`; measured (`counter`, `power_integration`) and
estimated figures are kept in separate fields and never summed together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lem.results.serving import ServingMetrics
from lem.results.strict import json_safe

RESULT_SCHEMA_VERSION = "1.1.0"  # 1.1: energy.requests, energy.phases, energy.node (optional, additive)
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
