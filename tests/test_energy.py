"""The energy layer through Zeus's seams: counters, sources, baselines, net energy, the estimate model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from zeus_seams import SimulatedGpu, fake_rapl, simulated_gpus

from lem.config.schema import BaselineConfig, ThermalConfig
from lem.energy.baseline import Baseline, get_baseline, measure_idle
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import DomainReading, EnergyMeter, WindowReading
from lem.energy.sampler import TimeseriesSampler
from lem.energy.thermal import wait_for_thermal_floor
from lem.metrics import domain_energies, energy_metrics


def test_gpu_counter_window_is_power_times_time() -> None:
    with simulated_gpus(SimulatedGpu(power_w=100.0), SimulatedGpu(power_w=250.0)):
        meter = EnergyMeter([0, 1], meter_gpu=True, meter_cpu=False, power_model=None)
        meter.begin("w")
        time.sleep(0.5)
        window = meter.end("w")
    readings = {d.domain: d for d in window.domains}
    assert set(readings) == {"gpu0", "gpu1"} and {d.source for d in window.domains} == {"counter"}
    assert readings["gpu0"].energy_j == pytest.approx(100.0 * window.duration_s, abs=0.5)
    assert readings["gpu1"].energy_j == pytest.approx(250.0 * window.duration_s, abs=0.5)


def test_meter_reads_only_the_gpus_the_run_uses() -> None:
    with simulated_gpus(SimulatedGpu(power_w=100.0), SimulatedGpu(power_w=250.0)):
        meter = EnergyMeter([1], meter_gpu=True, meter_cpu=False, power_model=None)
        meter.begin("w")
        window = meter.end("w")
    assert [d.domain for d in window.domains] == ["gpu1"]


def test_rapl_package_and_dram_are_counters(tmp_path: Path) -> None:
    with fake_rapl(tmp_path / "powercap", package_w=60.0, dram_w=6.0):
        meter = EnergyMeter([], meter_gpu=False, meter_cpu=True, power_model=CpuPowerModel(10.0, 0.3, 2))
        assert meter.power_model is None, "with a CPU counter there is nothing to estimate"
        meter.begin("w")
        time.sleep(0.6)
        window = meter.end("w")
    readings = {d.domain: d for d in window.domains}
    assert set(readings) == {"cpu0", "dram0"} and readings["cpu0"].source == "counter"
    assert readings["cpu0"].energy_j == pytest.approx(60.0 * window.duration_s, abs=1.0)
    assert readings["dram0"].energy_j == pytest.approx(6.0 * window.duration_s, abs=0.2)


def test_without_counters_cpu_energy_is_an_estimate_or_unavailable() -> None:
    estimating = EnergyMeter([], meter_gpu=False, meter_cpu=True, power_model=CpuPowerModel(10.0, 0.3, 2))
    estimating.begin("w")
    sum(i * i for i in range(200_000))
    (reading,) = estimating.end("w").domains
    assert reading.domain == "host_cpu" and reading.source == "estimate" and reading.energy_j > 0
    plain = EnergyMeter([], meter_gpu=False, meter_cpu=True, power_model=None)
    plain.begin("w")
    (reading,) = plain.end("w").domains
    assert reading.source == "unavailable" and reading.energy_j is None


def test_power_model_formula() -> None:
    model = CpuPowerModel(watts_per_core=10.0, idle_fraction=0.3, logical_cores=4)
    assert model.full_load_power_w == 40.0 and model.idle_power_w == 12.0
    total, net = model.energy_j(duration_s=2.0, cpu_time_s=3.0)  # 1.5 cores busy on average
    assert net == pytest.approx(28.0 * 3.0 / 4) and total == pytest.approx(12.0 * 2.0 + net)
    assert "formula" in model.assumptions()


def test_measured_idle_baseline_and_cache_ttl(tmp_path: Path) -> None:
    cache = tmp_path / "baselines.json"
    config = BaselineConfig(method="cache", duration_s=0.3, cache_ttl_seconds=60.0, sample_interval_s=0.05)
    with simulated_gpus(SimulatedGpu(power_w=42.0)):
        meter = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None)
        first = get_baseline(meter, config, cache, "dev-A")
        assert not first.from_cache and first.power_w["gpu0"] == pytest.approx(42.0, abs=0.5)
        assert first.power_cv["gpu0"] == pytest.approx(0.0)
        second = get_baseline(meter, config, cache, "dev-A")
        assert second.from_cache and second.measured_at == first.measured_at
        other_device = get_baseline(meter, config, cache, "dev-B")
        assert not other_device.from_cache
        stored = json.loads(cache.read_text())
        stored["dev-A"]["measured_at"] -= 120.0  # older than the TTL
        cache.write_text(json.dumps(stored))
        expired = get_baseline(meter, config, cache, "dev-A")
        assert not expired.from_cache and expired.age_s() < 5
        measured = get_baseline(meter, BaselineConfig(method="measure", duration_s=0.2), cache, "dev-A")
        assert not measured.from_cache


def test_net_energy_subtracts_baseline_over_the_same_window_per_domain() -> None:
    window = WindowReading(
        duration_s=10.0,
        cpu_time_s=5.0,
        domains=(
            DomainReading("gpu0", "counter", 1500.0),
            DomainReading("gpu1", "counter", 200.0),
            DomainReading("host_cpu", "estimate", 90.0, 70.0),
        ),
    )
    baseline = Baseline(
        power_w={"gpu0": 60.0, "gpu1": 30.0},
        power_cv={},
        temperature_c={},
        measured_at=time.time(),
        duration_s=5.0,
        from_cache=False,
    )
    model = CpuPowerModel(10.0, 0.2, 2)
    domains = {d.domain: d for d in domain_energies(window, baseline, model)}
    assert domains["gpu0"].net_energy_j == 900.0 and not domains["gpu0"].net_clamped
    assert domains["gpu1"].net_energy_j == 0.0 and domains["gpu1"].net_clamped  # 200 - 300 < 0
    assert domains["host_cpu"].source == "estimate" and domains["host_cpu"].net_energy_j == 70.0
    energy = energy_metrics(
        window,
        list(domains.values()),
        output_tokens=100,
        num_requests=4,
        peak_power_w=None,
        power_model=model,
        load=None,
    )
    assert energy.measured_energy_j == 1700.0, "estimates are never added to measured energy"
    assert energy.measured_net_energy_j == 900.0
    assert energy.j_per_output_token == 17.0 and energy.j_per_request == 425.0 and energy.avg_power_w == 170.0
    assert energy.estimated_energy_j == 90.0 and energy.estimated_j_per_output_token == 0.9
    assert energy.estimate_model is not None


def test_sampler_reaches_its_rate_and_records_gpu_power() -> None:
    with simulated_gpus(SimulatedGpu(power_w=75.0, sm_clock_mhz=1410)):
        from lem.energy.devices import zeus_gpus

        sampler = TimeseriesSampler(zeus_gpus(), [0], sample_rate_hz=20.0)
        sampler.start()
        time.sleep(1.0)
        sampler.stop()
    frame = sampler.to_frame()
    assert 15 <= len(frame) <= 25 and sampler.achieved_rate_hz() == pytest.approx(20.0, rel=0.2)
    assert (frame["gpu0_power_w"] == 75.0).all() and (frame["gpu0_sm_clock_mhz"] == 1410.0).all()
    assert frame["time_s"].is_monotonic_increasing


def test_measure_idle_samples_power_for_stability() -> None:
    with simulated_gpus(SimulatedGpu(power_w=30.0)):
        meter = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None)
        baseline = measure_idle(meter, duration_s=0.25, sample_interval_s=0.05)
    assert baseline.power_w["gpu0"] == pytest.approx(30.0, abs=0.5) and "gpu0" in baseline.power_cv


def test_thermal_floor_waits_for_idle_and_times_out() -> None:
    with simulated_gpus(SimulatedGpu(power_w=100.0)) as (gpu,):
        meter = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None)
        idle = measure_idle(meter, duration_s=0.1, sample_interval_s=0.05)
        assert idle.temperature_c == {"gpu0": 40.0}
        hot = ThermalConfig(
            enabled=True, temperature_margin_c=2.0, power_margin_w=5.0, timeout_s=0.5, poll_interval_s=0.05
        )
        assert wait_for_thermal_floor(meter, idle, hot).reached is True
        gpu.temperature_c = 60  # still hot from the last job
        waited = wait_for_thermal_floor(meter, idle, hot)
        assert waited.reached is False and waited.waited_s >= 0.5 and waited.reason == "timed out"
        gpu.temperature_c = 41
        assert wait_for_thermal_floor(meter, idle, hot).reached is True
    cpu_only = EnergyMeter([], meter_gpu=False, meter_cpu=False, power_model=None)
    assert wait_for_thermal_floor(cpu_only, None, hot).reached is None
