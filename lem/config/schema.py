"""The experiment schema: structured-config dataclasses that Hydra composes and validates.

`ExperimentConfig` is the primary config; `backend` is a config group whose options are subclasses of
`BackendConfig` (see `lem.backends.*.config`). Units are in the field names (`duration_s`, `sample_rate_hz`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import MISSING

from lem.config.fields import param

CURRENT_SCHEMA_VERSION = "3.0.0"
TINY_MODEL_ID = "lem-tiny-llama"
FP_PRECISIONS = ("float32", "float16", "bfloat16")

#: Decoder presets: values applied to every sampling field the user left unset (None).
DECODER_PRESETS: dict[str, dict[str, Any]] = {
    "deterministic": {"do_sample": False},
    "standard": {"do_sample": True, "temperature": 1.0, "top_k": 50, "top_p": 1.0},
    "creative": {"do_sample": True, "temperature": 1.2, "top_k": 0, "top_p": 0.95},
    "factual": {"do_sample": True, "temperature": 0.3, "top_k": 10, "top_p": 0.9},
}
#: Decoder fields that only matter when sampling.
SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "min_p")


@dataclass
class BackendConfig:
    """Base of the `backend` group options; `name` selects the implementation."""

    #: The (tensor, pipeline) parallel size fields of a backend that spreads one engine over GPUs; None elsewhere.
    PARALLEL_KEYS: ClassVar[tuple[str, str] | None] = None

    name: str = param(MISSING, description="Backend implementation (set by the `backend` group option).")
    reuse: bool = param(
        True,
        description="Keep the loaded engine for the next job of a sweep run in this process when its engine key "
        "(the translated engine and loader arguments and the model files) is the same; false loads every job anew.",
        maps_to="lem engine reuse",
        hashed=False,
    )

    def gpus_spanned(self) -> int:
        """GPUs one engine spans: tensor x pipeline parallel size (1 where the backend has no such fields)."""
        if self.PARALLEL_KEYS is None:
            return 1
        tensor, pipeline = (getattr(self, key) for key in self.PARALLEL_KEYS)
        return tensor * pipeline


@dataclass
class DatasetConfig:
    """Where prompts come from."""

    name: str = param(
        "builtin",
        description="'builtin' (ships with lem), 'synthetic' (exactly max_input_tokens tokens each), "
        "a local .jsonl/.json/.txt/.csv file, or a Hugging Face datasets name (needs a local cache).",
    )
    sample_size: int | None = param(
        None, description="Rows drawn (seeded) from the source before num_input_prompts applies; null = all rows.", ge=1
    )
    split: str = param("train", description="Split of a Hugging Face dataset.")
    column: str | None = param(None, description="Text column of a jsonl/csv/HF source; null = 'text' or 'prompt'.")


@dataclass
class DecoderConfig:
    """Decoding strategy; a preset fills every sampling field left null."""

    preset: str | None = param(
        "deterministic", description="Decoding preset; null = only the explicit fields.", choices=tuple(DECODER_PRESETS)
    )
    do_sample: bool | None = param(None, description="Sample instead of greedy decoding; null = from the preset.")
    temperature: float | None = param(None, description="Sampling temperature.", ge=0.0)
    top_k: int | None = param(None, description="Top-k sampling; 0 disables.", ge=0)
    top_p: float | None = param(None, description="Nucleus sampling probability mass.", gt=0.0, le=1.0)
    min_p: float | None = param(
        None, description="Minimum token probability relative to the most likely.", ge=0.0, le=1.0
    )
    repetition_penalty: float | None = param(None, description="Penalty on repeated tokens; 1.0 = none.", gt=0.0)


@dataclass
class WarmupConfig:
    """Unmeasured warmup before the window; each warmup iteration generates for one prompt."""

    enabled: bool = param(True, description="Run warmup before the measured window.")
    mode: str = param(
        "convergence",
        description="'convergence': until the latency CV of the last `window` "
        "iterations is <= target_cv; 'fixed': exactly `count` iterations.",
        choices=("convergence", "fixed"),
    )
    min_prompts: int = param(3, description="Convergence mode: at least this many iterations.", ge=1)
    max_prompts: int = param(20, description="Convergence mode: at most this many iterations.", ge=1)
    target_cv: float = param(0.1, description="Convergence mode: coefficient of variation to reach.", gt=0.0)
    window: int = param(3, description="Convergence mode: latencies the CV is computed over.", ge=2)
    count: int = param(5, description="Fixed mode: number of iterations.", ge=1)


@dataclass
class BaselineConfig:
    """Idle power, measured before the model loads and subtracted per domain over the window's duration."""

    enabled: bool = param(True, description="Measure (or reuse) idle power and report net energy.")
    method: str = param(
        "cache",
        description="'measure': always measure; 'cache': reuse a fresh cached value; 'off': no baseline.",
        choices=("measure", "cache", "off"),
    )
    duration_s: float = param(5.0, description="Idle measurement length, seconds.", gt=0.0)
    cache_ttl_seconds: float = param(3600.0, description="Age after which a cached baseline is re-measured.", ge=0.0)
    sample_interval_s: float = param(0.1, description="Power sampling interval while measuring idle, seconds.", gt=0.0)


@dataclass
class TimeseriesConfig:
    """Power/temperature/utilisation sampler running beside the measured window."""

    enabled: bool = param(True, description="Sample device telemetry through the window.")
    sample_rate_hz: float = param(10.0, description="Target samples per second.", gt=0.0, le=1000.0)
    save: bool = param(True, description="Write the samples to timeseries.parquet in the job directory.")


@dataclass
class EnergyConfig:
    """Which devices and domains are metered, and what happens where no hardware counter exists."""

    gpu: bool = param(True, description="Meter every GPU the run uses with NVML's energy counter (Zeus).")
    cpu: bool = param(True, description="Meter CPU packages and DRAM with RAPL (Zeus) where available.")
    when_no_counter: str = param(
        "estimate",
        description="Where a domain has no counter: 'estimate' host CPU energy from the power model below "
        "(labelled source=estimate), 'unavailable' (null energy), or 'error' (fail the run).",
        choices=("estimate", "unavailable", "error"),
    )
    estimate_watts_per_core: float = param(10.0, description="Power model: full-load watts per logical core.", gt=0.0)
    estimate_idle_fraction: float = param(
        0.3, description="Power model: idle power as a fraction of full load.", ge=0.0, le=1.0
    )
    node: str = param(
        "off",
        description="Whole-node power from the BMC, sampled about once a second through the baseline and the measured "
        "window and reported apart from the GPU and CPU domains (it includes them): 'off', 'ipmi' (fail before "
        "loading where ipmitool is missing, refused or reads deactivated) or 'auto' (where available; the result "
        "says why not).",
        choices=("off", "ipmi", "auto"),
        maps_to="ipmitool dcmi power reading",
    )
    phases: str = param(
        "total",
        description="'total': one measured window. 'split': also meter a prefill pass before it (every prompt, same "
        "batches, exactly 1 output token, repeated until its window lasts >= 1 s) and report prefill energy (J per "
        "input token) and decode energy (the window minus one prefill pass, J per output token) apart; offline only.",
        choices=("total", "split"),
    )


@dataclass
class ThermalConfig:
    """Thermal floor: before the measured window, wait until the GPUs are back near their idle baseline."""

    enabled: bool = param(False, description="Wait for the thermal floor before measuring (needs a GPU baseline).")
    temperature_margin_c: float = param(
        5.0, description="Done when every GPU is within this of its idle temperature, Celsius.", ge=0.0
    )
    power_margin_w: float = param(15.0, description="... and within this of its idle power, watts.", ge=0.0)
    timeout_s: float = param(300.0, description="Give up waiting after this long (recorded as not reached).", gt=0.0)
    poll_interval_s: float = param(1.0, description="Seconds between checks.", gt=0.0)


@dataclass
class CampaignConfig:
    """Campaign settings (set by conf/campaign presets) and this job's place in it (set by the lem_campaign sweeper).

    Not part of the config hash: a job's identity is what it measures, not where it ran in the order.
    """

    name: str | None = param(None, description="Campaign name; its sweep directory is multirun/campaigns/<name>.")
    cycles: int = param(1, description="Times every grid point is run.", ge=1)
    structure: str = param(
        "interleaved",
        description="Run order: 'interleaved' (every point once per cycle), "
        "'grouped' (all cycles of a point together), 'shuffled' (seeded order per cycle).",
        choices=("interleaved", "grouped", "shuffled"),
    )
    seed: int = param(0, description="Seed of the shuffled order.")
    config_gap_seconds: float = param(0.0, description="Pause between consecutive jobs, seconds.", ge=0.0)
    cycle_gap_seconds: float = param(0.0, description="Pause when a new cycle starts, seconds.", ge=0.0)
    resume: bool = param(False, description="Skip jobs whose results.json is ok with the same config hash.")
    cycle: int | None = param(None, description="Set by the sweeper: this job's cycle (0-based).", ge=0)
    position: int | None = param(None, description="Set by the sweeper: this job's place in the run order.", ge=0)
    point: str | None = param(None, description="Set by the sweeper: the grid point's overrides.")
    point_index: int | None = param(None, description="Set by the sweeper: the grid point's index.", ge=0)


@dataclass
class ImpactConfig:
    """Inputs of the CO2e and cost figures per 1M output tokens (lem/impact.py); stored beside the figures.

    Not part of the config hash: they change nothing about what is measured, so campaign resume still recognises a
    finished job. A null input leaves its figures null; nothing is guessed.
    """

    grid_intensity_g_per_kwh: float | None = param(
        None, description="Carbon intensity of the electricity, g CO2e per kWh; null = no CO2e figures.", ge=0.0
    )
    pue: float = param(
        1.0, description="Power usage effectiveness of the facility: the energy figures are multiplied by it.", ge=1.0
    )
    price_per_kwh: float | None = param(
        None, description="Electricity price per kWh (in `currency`); null = no energy cost figures.", ge=0.0
    )
    gpu_hour_price: float | None = param(
        None,
        description="Instance price per GPU-hour (in `currency`): the instance cost is this x the GPUs the run used "
        "x the measured window; null = no instance cost.",
        ge=0.0,
    )
    currency: str = param("USD", description="Currency of price_per_kwh and gpu_hour_price (a label: no conversion).")


#: Backends that can run as a live server under load (scenario=serving); lem.serving.launch starts each one's server.
SERVING_BACKENDS = ("vllm", "tensorrt")


@dataclass
class ScenarioConfig:
    """Base of the `scenario` group options: how requests reach the engine."""

    name: str = param(
        "offline",
        description="'offline': every prompt handed to the engine in batches; 'serving': the backend's own server, "
        f"started by lem, under a stated load (backends: {', '.join(SERVING_BACKENDS)}). Set by the `scenario` "
        "group option (`scenario=serving`); the serving keys (scenario.request_rate, ...): docs/serving.md.",
        choices=("offline", "serving"),
    )


@dataclass
class OfflineScenario(ScenarioConfig):
    """`scenario=offline` (the default): the measured window generates for every prompt, in batches."""

    name: str = param("offline", description="Scenario (set by the `scenario` group option).", choices=("offline",))


@dataclass
class ServingScenario(ScenarioConfig):
    """`scenario=serving`: the backend's server under load from lem's process, measured over a steady-state window
    (lem.serving.window): from the completion of the first `ramp_up_requests` requests to the send of the last."""

    name: str = param("serving", description="Scenario (set by the `scenario` group option).", choices=("serving",))
    request_rate: float = param(
        4.0,
        description="Target requests per second: Poisson arrivals seeded with random_seed; inf = all at once "
        "(written to results.json as the string 'inf').",
        gt=0.0,
    )
    max_concurrency: int | None = param(
        None, description="Requests in flight at most (a request waits for a slot); null = no limit.", ge=1
    )
    num_requests: int = param(64, description="Requests sent; request i uses prompt i mod num_input_prompts.", ge=3)
    ramp_up_requests: int = param(
        8,
        description="The window opens when this many requests have completed (ramp-up); where every request was "
        "sent before that, it closes when all but this many have completed (drain). num_requests must exceed twice it.",
        ge=1,
    )
    drain: str = param(
        "wait",
        description="After the window closes: 'wait' for the requests in flight, or 'cancel' them (they are "
        "recorded as cancelled).",
        choices=("wait", "cancel"),
    )
    ttft_slo_s: float = param(1.0, description="SLO on time to first token, seconds (goodput).", gt=0.0)
    tpot_slo_s: float = param(
        0.1, description="SLO on time per output token after the first, seconds (goodput).", gt=0.0
    )
    server_start_timeout_s: float = param(
        600.0, description="Seconds the server may take to answer /health before the run fails (load phase).", gt=0.0
    )
    request_timeout_s: float = param(
        300.0, description="Seconds a request may wait for its next streamed chunk before the run fails.", gt=0.0
    )


#: The `scenario` group options.
SCENARIOS: dict[str, type[ScenarioConfig]] = {"offline": OfflineScenario, "serving": ServingScenario}


@dataclass
class ExperimentConfig:
    """One experiment: a model, a backend configuration and a fixed prompt workload."""

    backend: BackendConfig = MISSING
    scenario: ScenarioConfig = MISSING
    schema_version: str | None = param(None, description=f"Config schema version; current is {CURRENT_SCHEMA_VERSION}.")
    config_name: str | None = param(None, description="Free label stored in the results.", hashed=False)
    model: str = param(
        TINY_MODEL_ID,
        description=f"Hugging Face model id (downloaded in the prepare phase unless cached; HF_HUB_OFFLINE=1 forbids "
        f"that) or local path; '{TINY_MODEL_ID}' is built offline by lem.",
    )
    gpus: list[int] | None = param(None, description="CUDA device indices to use and meter; null = all visible.")
    max_input_tokens: int = param(128, description="Prompts are truncated to this many tokens.", ge=1)
    max_output_tokens: int = param(64, description="New tokens generated per prompt (at most).", ge=1)
    fixed_length: bool = param(
        True,
        description="Generate exactly max_output_tokens per prompt (EOS ignored), "
        "so every backend emits the same token count.",
    )
    num_input_prompts: int = param(100, description="Prompts in the measured window.", ge=1)
    fp_precision: str = param(
        "auto",
        description="Weights and activations precision. 'auto': on a GPU the checkpoint's dtype when it is 16-bit, "
        "else bfloat16 (float16 where a GPU lacks bfloat16); on CPU float32; TensorRT-LLM never float32. The "
        "resolved value is in results.json (backend.settings.fp_precision).",
        choices=("auto", *FP_PRECISIONS),
    )
    random_seed: int = param(42, description="Seed for prompt selection and sampling.")
    dataset: DatasetConfig = param(description="Prompt source.", default_factory=DatasetConfig)
    decoder: DecoderConfig = param(description="Decoding settings.", default_factory=DecoderConfig)
    warmup: WarmupConfig = param(description="Warmup settings.", default_factory=WarmupConfig)
    baseline: BaselineConfig = param(description="Idle baseline settings.", default_factory=BaselineConfig)
    timeseries: TimeseriesConfig = param(description="Telemetry sampler settings.", default_factory=TimeseriesConfig)
    energy: EnergyConfig = param(description="Energy metering settings.", default_factory=EnergyConfig)
    thermal: ThermalConfig = param(description="Thermal floor before the window.", default_factory=ThermalConfig)
    campaign: CampaignConfig = param(
        description="Campaign settings and position.", default_factory=CampaignConfig, hashed=False
    )
    impact: ImpactConfig = param(description="CO2e and cost inputs.", default_factory=ImpactConfig, hashed=False)
    cache_dir: str | None = param(
        None, description="Cache for the tiny model and baselines; null = $LEM_CACHE_DIR or ~/.cache/lem."
    )
    dry_run: bool = param(False, description="Compose, validate and print findings; load nothing.", hashed=False)
