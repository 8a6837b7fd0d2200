"""The result's figures, assembled in one place from what the phases produced: metrics, energy, quality, flags."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Any

from lem.backends.base import LoadInfo
from lem.energy.baseline import Baseline
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import WindowReading
from lem.energy.node import SENSOR, NodePowerSampler
from lem.energy.thermal import ThermalWait
from lem.measure import Measurement
from lem.metrics import domain_energies, energy_metrics, request_metrics
from lem.phases import PrefillMeasurement, phase_split
from lem.results.schema import EnergyMetrics, Metrics, NodeEnergy, PhaseEnergy, Quality, WarmupReport

#: A window shorter than this is dominated by energy-counter update granularity (NVML updates every ~100 ms).
MIN_TRUSTED_WINDOW_S = 1.0
#: Idle power whose instantaneous samples vary more than this (CV) was not idle.
MAX_BASELINE_CV = 0.1


@dataclass(frozen=True)
class IdleBaseline:
    """The baseline phase's outcome: the baseline, or why there is none."""

    baseline: Baseline | None
    skipped_reason: str | None


def _flags(
    quality: Quality,
    energy: EnergyMetrics,
    baseline: Baseline | None,
    target_rate_hz: float | None,
    slurm: dict[str, Any],
    window_flags: list[str],
) -> list[str]:
    flags = list(window_flags)
    if energy.measured_energy_j is None:
        flags.append("no_measured_energy")
    flags += [f"net_clamped:{d.domain}" for d in energy.domains if d.net_clamped]
    if baseline is not None:
        flags += [f"baseline_unstable:{k}" for k, cv in baseline.power_cv.items() if cv > MAX_BASELINE_CV]
    if quality.window_duration_s < MIN_TRUSTED_WINDOW_S:
        flags.append("short_window")
    if quality.warmup.converged is False:
        flags.append("warmup_not_converged")
    rate = quality.achieved_sample_rate_hz
    if target_rate_hz is not None and rate is not None and rate < 0.8 * target_rate_hz:
        flags.append("low_sample_rate")
    if quality.gpu_shared_with_other_processes:
        flags.append("gpu_shared")
    if quality.gpu_sharing == "unknown":
        flags.append("gpu_sharing_unknown")
    if quality.thermal_floor_reached is False:
        flags.append("thermal_floor_not_reached")
    if slurm.get("exclusive") is False:
        flags.append("node_shared")
    return flags


def _quality(measured: Measurement, idle: IdleBaseline, warmup: WarmupReport, thermal: ThermalWait) -> Quality:
    baseline = idle.baseline
    return Quality(
        window_duration_s=measured.window.duration_s,
        window_process_cpu_time_s=measured.window.cpu_time_s,
        timeseries_samples=measured.samples,
        achieved_sample_rate_hz=measured.achieved_sample_rate_hz,
        baseline_age_s=baseline.age_s() if baseline is not None else None,
        baseline_from_cache=baseline.from_cache if baseline is not None else None,
        baseline_power_cv=baseline.power_cv if baseline is not None else {},
        baseline_skipped_reason=idle.skipped_reason,
        temperature_start_c=measured.temperature_start_c,
        temperature_end_c=measured.temperature_end_c,
        gpu_shared_with_other_processes={"shared": True, "exclusive": False}.get(measured.gpu_sharing or ""),
        thermal_floor_reached=thermal.reached,
        thermal_wait_s=thermal.waited_s,
        warmup=warmup,
        flags=[],
        gpu_sharing=measured.gpu_sharing,
        power_integration_rate_hz={
            d.domain: d.sample_rate_hz for d in measured.window.domains if d.sample_rate_hz is not None
        },
    )


def node_energy(
    sampler: NodePowerSampler, window: WindowReading, baseline: Baseline | None, measured_energy_j: float | None
) -> NodeEnergy | None:
    """The node's figure over the measured window from the node power sampler (None without readings), net of the
    node's idle power from the same sensor where the baseline holds one."""
    start_s, end_s = window.started_s, window.started_s + window.duration_s
    energy_j = sampler.energy_j(start_s, end_s)
    if energy_j is None:
        return None
    idle_w = baseline.node_power_w if baseline is not None else None
    net_j = None if idle_w is None else energy_j - idle_w * window.duration_s
    clamped = net_j is not None and net_j < 0
    return NodeEnergy(
        source="power_integration",
        sensor=SENSOR,
        energy_j=energy_j,
        avg_power_w=energy_j / window.duration_s,
        baseline_power_w=idle_w,
        net_energy_j=0.0 if clamped else net_j,
        net_clamped=clamped,
        sample_rate_hz=sampler.achieved_rate_hz(),
        samples=sampler.samples_between(start_s, end_s),
        rest_of_node_j=None if measured_energy_j is None else energy_j - measured_energy_j,
    )


def _node(
    node: tuple[NodePowerSampler | None, str | None], window: WindowReading, energy: EnergyMetrics, idle: IdleBaseline
) -> list[str]:
    """Sets the energy's node figure, or why there is none; returns its quality flags."""
    sampler, energy.node_skipped_reason = node
    if sampler is None:
        return []
    if sampler.error is not None:
        energy.node_skipped_reason = f"node power sampling failed: {sampler.error}"
        return ["node_power_failed"]
    energy.node = node_energy(sampler, window, idle.baseline, energy.measured_energy_j)
    if energy.node is None:
        energy.node_skipped_reason = "no node power reading"
        return ["node_power_failed"]
    return ["net_clamped:node"] if energy.node.net_clamped else []


def assemble(
    measured: Measurement,
    idle: IdleBaseline,
    power_model: CpuPowerModel | None,
    load: tuple[LoadInfo, WindowReading | None],
    peak_device_memory_bytes: int | None,
    warmup: WarmupReport,
    thermal: ThermalWait,
    target_rate_hz: float | None,
    slurm: dict[str, Any],
    *,
    prefill: PrefillMeasurement | None = None,
    node: tuple[NodePowerSampler | None, str | None] = (None, None),
) -> tuple[Metrics, EnergyMetrics, Quality]:
    """Metrics from the records, energy per domain (net of the idle baseline) and the quality block with its flags.

    A load window of None means the job reused the previous job's engine: its load phase and load energy are zero
    (the cold-start cost stays on the job that paid it). With a `prefill` window (energy.phases=split), the energy
    is also split into prefill and decode (lem.phases), its flags joining the quality flags. `node` is the node power
    sampler (stopped) where energy.node samples one, and why there is none where it was asked for; the node figure
    stays apart from the domains."""
    load_info, load_window = load
    window, frame = measured.window, measured.timeseries
    power_columns = [c for c in frame.columns if c.endswith("_power_w")] if frame is not None else []
    peak_power_w = float(frame[power_columns].sum(axis=1).max()) if frame is not None and power_columns else None
    metrics = request_metrics(
        measured.generation.records,
        window.duration_s,
        measured.generation.timing_source,
        peak_device_memory_bytes,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        load_info.parameters,
    )
    load_energy = (
        PhaseEnergy(load_window.duration_s, domain_energies(load_window, None, power_model))
        if load_window is not None
        else PhaseEnergy(0.0, [])
    )
    energy = energy_metrics(
        window,
        domain_energies(window, idle.baseline, power_model),
        metrics.output_tokens,
        metrics.num_requests,
        peak_power_w,
        power_model,
        load_energy,
    )
    split_flags: list[str] = []
    if prefill is not None:
        energy.phases, split_flags = phase_split(
            prefill, idle.baseline, power_model, energy.domains, metrics.output_tokens, metrics.num_requests
        )
    node_flags = _node(node, window, energy, idle)
    quality = _quality(measured, idle, warmup, thermal)
    load_flags = load_window.flags if load_window is not None else ()
    window_flags = [*measured.window.flags, *(f"load:{flag}" for flag in load_flags), *split_flags, *node_flags]
    quality.flags = _flags(quality, energy, idle.baseline, target_rate_hz, slurm, window_flags)
    return metrics, energy, quality
