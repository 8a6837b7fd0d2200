"""Metrics from what the backend did and what the meter read: pure functions, no I/O, no devices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lem.backends.base import RequestRecord
from lem.energy.baseline import Baseline
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import WindowReading
from lem.numbers import ratio, total
from lem.results.schema import MEASURED_SOURCES, Distribution, DomainEnergy, EnergyMetrics, Metrics, PhaseEnergy


def distribution(values: Sequence[float]) -> Distribution | None:
    """Mean and p50/p95/p99 (linear interpolation); None for no values."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return Distribution(mean=float(array.mean()), p50=float(p50), p95=float(p95), p99=float(p99), count=len(values))


def domain_energies(
    window: WindowReading, baseline: Baseline | None, power_model: CpuPowerModel | None
) -> list[DomainEnergy]:
    """Per-domain energy with net = energy − that domain's idle power × this window's duration, clamped at 0."""
    energies = []
    for reading in window.domains:
        if reading.source in MEASURED_SOURCES and reading.energy_j is not None:
            idle_w = baseline.power_w.get(reading.domain) if baseline is not None else None
            net = None if idle_w is None else reading.energy_j - idle_w * window.duration_s
            clamped = net is not None and net < 0
            energies.append(
                DomainEnergy(
                    reading.domain,
                    reading.source,
                    reading.energy_j,
                    idle_w,
                    0.0 if clamped else net,
                    clamped,
                    None if idle_w is not None else "no idle baseline for this domain",
                )
            )
        elif reading.source == "estimate":
            assert power_model is not None
            energies.append(
                DomainEnergy(
                    reading.domain,
                    "estimate",
                    reading.energy_j,
                    power_model.idle_power_w,
                    reading.estimated_net_j,
                    False,
                    "CpuPowerModel estimate, not a measurement",
                )
            )
        else:
            energies.append(
                DomainEnergy(
                    reading.domain,
                    "unavailable",
                    None,
                    None,
                    None,
                    False,
                    reading.note or "no hardware counter and estimation is off (energy.when_no_counter)",
                )
            )
    return energies


def energy_metrics(
    window: WindowReading,
    domains: list[DomainEnergy],
    output_tokens: int,
    num_requests: int,
    peak_power_w: float | None,
    power_model: CpuPowerModel | None,
    load: PhaseEnergy | None,
) -> EnergyMetrics:
    """Totals and per-token figures, measured and estimated kept apart."""
    measured = [d for d in domains if d.source in MEASURED_SOURCES]
    estimated = [d for d in domains if d.source == "estimate"]
    measured_j = total([d.energy_j for d in measured])
    measured_net_j = total([d.net_energy_j for d in measured])
    estimated_j = total([d.energy_j for d in estimated])
    return EnergyMetrics(
        measured_energy_j=measured_j,
        measured_net_energy_j=measured_net_j,
        j_per_output_token=ratio(measured_j, output_tokens),
        net_j_per_output_token=ratio(measured_net_j, output_tokens),
        output_tokens_per_j=ratio(output_tokens, measured_j),
        j_per_request=ratio(measured_j, num_requests),
        avg_power_w=ratio(measured_j, window.duration_s),
        peak_power_w=peak_power_w,
        estimated_energy_j=estimated_j,
        estimated_net_energy_j=total([d.net_energy_j for d in estimated]),
        estimated_j_per_output_token=ratio(estimated_j, output_tokens),
        estimate_model=power_model.assumptions() if estimated and power_model is not None else None,
        domains=domains,
        load=load,
    )


def request_metrics(
    records: Sequence[RequestRecord],
    duration_s: float,
    timing_source: str,
    peak_device_memory_bytes: int | None,
    peak_host_rss_bytes: int,
    parameters: int | None,
) -> Metrics:
    """Token counts, throughput and latency distributions from the per-request records."""
    input_tokens = sum(r.input_tokens for r in records)
    output_tokens = sum(r.output_tokens for r in records)
    latency = distribution([r.finished_s - r.started_s for r in records])
    assert latency is not None, "no requests"
    timed = [r for r in records if r.first_token_s is not None]
    ttft = distribution([r.first_token_s - r.started_s for r in timed])  # type: ignore[operator]
    itl = distribution(
        [
            (r.finished_s - r.first_token_s) / (r.output_tokens - 1)  # type: ignore[operator]
            for r in timed
            if r.output_tokens > 1
        ]
    )
    return Metrics(
        num_requests=len(records),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        duration_s=duration_s,
        output_tokens_per_s=output_tokens / duration_s,
        requests_per_s=len(records) / duration_s,
        latency_s=latency,
        ttft_s=ttft,
        itl_s=itl,
        timing_source=timing_source,
        peak_device_memory_bytes=peak_device_memory_bytes,
        peak_host_rss_bytes=peak_host_rss_bytes,
        flops_estimate=None if parameters is None else 2.0 * parameters * (input_tokens + output_tokens),
        flops_method="2 x parameters x (input + output tokens): dense forward passes, attention and KV-cache "
        "reuse ignored"
        if parameters is not None
        else "unavailable: the backend did not report a parameter count",
    )
