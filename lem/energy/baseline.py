"""Idle baseline: mean power per measured domain (and of the node, where sampled) before the model loads, cached per
device set with a TTL."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lem.atomic import write_json_atomic
from lem.config.schema import BaselineConfig
from lem.energy.meter import EnergyMeter
from lem.energy.node import NodePowerSampler
from lem.numbers import coefficient_of_variation


@dataclass(frozen=True)
class Baseline:
    """Idle power in watts per domain (hardware domains only), when it was measured and for how long.

    `power_cv` is the coefficient of variation of instantaneous GPU power sampled during the idle window:
    a high value means the device was not idle. `temperature_c` is each GPU's temperature at the end of it.
    `node_power_w` is the node's mean power over the same idle window (lem.energy.node), None where not sampled.
    """

    power_w: dict[str, float]
    power_cv: dict[str, float]
    temperature_c: dict[str, float]
    measured_at: float
    duration_s: float
    from_cache: bool
    node_power_w: float | None = None

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the measurement."""
        return (time.time() if now is None else now) - self.measured_at


def _load_cache(cache_file: Path) -> dict[str, dict]:
    try:
        return json.loads(cache_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def measure_idle(
    meter: EnergyMeter, duration_s: float, sample_interval_s: float, node: NodePowerSampler | None = None
) -> Baseline:
    """Mean power of every hardware domain over `duration_s` seconds of idling (energy / time), and of the node from
    `node`'s readings over the same seconds (a running sampler).

    Instantaneous GPU power is sampled every `sample_interval_s` meanwhile, for the stability check only.
    """
    samples: dict[str, list[float]] = {f"gpu{i}": [] for i in meter.gpu_indices}
    meter.begin("lem_baseline")
    deadline = time.monotonic() + duration_s
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(sample_interval_s, remaining))
        for i in meter.gpu_indices:
            samples[f"gpu{i}"].append(meter.gpus.get_instant_power_usage(i) / 1000.0)
    window = meter.end("lem_baseline")
    node_power_w = None
    if node is not None and node.error is None:
        node_power_w = node.mean_power_w(window.started_s, window.started_s + window.duration_s)
    power = {
        d.domain: d.energy_j / window.duration_s
        for d in window.domains
        if d.source in ("counter", "power_integration") and d.energy_j is not None
    }
    return Baseline(
        power_w=power,
        power_cv={k: coefficient_of_variation(v) for k, v in samples.items() if v},
        temperature_c=meter.temperatures_c(),
        measured_at=time.time(),
        duration_s=window.duration_s,
        from_cache=False,
        node_power_w=node_power_w,
    )


def get_baseline(
    meter: EnergyMeter,
    config: BaselineConfig,
    cache_file: Path,
    device_key: str,
    node: NodePowerSampler | None = None,
) -> Baseline:
    """The cached baseline for `device_key` if younger than the TTL (method=cache) and, where `node` samples the node,
    holding a node power; else a fresh measurement.

    A fresh measurement is written back to the cache atomically; entries for other device sets are kept.
    """
    if config.method == "cache":
        entry = _load_cache(cache_file).get(device_key)
        if entry is not None:
            cached = Baseline(**{"temperature_c": {}, **entry, "from_cache": True})
            if cached.age_s() <= config.cache_ttl_seconds and (node is None or cached.node_power_w is not None):
                return cached
    baseline = measure_idle(meter, config.duration_s, config.sample_interval_s, node)
    cache = _load_cache(cache_file)
    cache[device_key] = {k: v for k, v in asdict(baseline).items() if k != "from_cache"}
    write_json_atomic(cache_file, cache)
    return baseline
