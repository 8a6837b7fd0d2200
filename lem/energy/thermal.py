"""Thermal floor: wait until every metered GPU is back near its idle temperature and power."""

from __future__ import annotations

import time
from dataclasses import dataclass

from lem.config.schema import ThermalConfig
from lem.energy.baseline import Baseline
from lem.energy.meter import EnergyMeter


@dataclass(frozen=True)
class ThermalWait:
    """`reached` is None where the floor could not be checked (`reason` says why); `waited_s` in seconds."""

    reached: bool | None
    waited_s: float
    reason: str | None = None


def _near_idle(meter: EnergyMeter, baseline: Baseline, config: ThermalConfig) -> bool:
    temperatures = meter.temperatures_c()
    power = meter.instant_power_w()
    return all(
        temperatures[d] <= baseline.temperature_c[d] + config.temperature_margin_c
        and power[d] <= baseline.power_w[d] + config.power_margin_w
        for d in temperatures
    )


def wait_for_thermal_floor(meter: EnergyMeter, baseline: Baseline | None, config: ThermalConfig) -> ThermalWait:
    """Poll every `poll_interval_s` until near idle or `timeout_s` passed."""
    if not meter.gpu_indices:
        return ThermalWait(None, 0.0, "no GPU is metered")
    gpus = [f"gpu{i}" for i in meter.gpu_indices]
    if baseline is None or any(d not in baseline.power_w or d not in baseline.temperature_c for d in gpus):
        return ThermalWait(None, 0.0, "no idle baseline with GPU power and temperature")
    started = time.monotonic()
    while not _near_idle(meter, baseline, config):
        if time.monotonic() - started >= config.timeout_s:
            return ThermalWait(False, time.monotonic() - started, "timed out")
        time.sleep(config.poll_interval_s)
    return ThermalWait(True, time.monotonic() - started)
