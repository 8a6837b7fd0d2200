"""EnergyMeter: one Zeus window over exactly the GPUs and CPU packages a run uses, each figure with its source.

Sources: `counter` (NVML energy counter, RAPL), `power_integration` (Zeus integrates NVML power for GPUs older
than Volta), `estimate` (CpuPowerModel, only where no CPU counter exists and the config asks for it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lem.energy.estimate import CpuPowerModel

if TYPE_CHECKING:
    from zeus.device.gpu.common import GPUs

Source = Literal["counter", "power_integration", "estimate", "unavailable"]


@dataclass(frozen=True)
class DomainReading:
    """Energy of one domain over one window. `domain` is `gpu<i>`, `cpu<i>`, `dram<i>` or `host_cpu`.

    `estimated_net_j` is set only for estimates: the model's energy above its own idle power.
    """

    domain: str
    source: Source
    energy_j: float | None
    estimated_net_j: float | None = None


@dataclass(frozen=True)
class WindowReading:
    """One closed window: its duration (seconds) and a reading per domain."""

    duration_s: float
    cpu_time_s: float
    domains: tuple[DomainReading, ...]


def _torch_has_cuda() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


class EnergyMeter:
    """Zeus's ZeusMonitor on the given GPUs (and RAPL packages), plus the labelled CPU estimate where configured."""

    def __init__(
        self, gpu_indices: list[int], *, meter_gpu: bool, meter_cpu: bool, power_model: CpuPowerModel | None
    ) -> None:
        from zeus.monitor import ZeusMonitor

        self._monitor = ZeusMonitor(gpu_indices=gpu_indices if meter_gpu else [], cpu_indices=None if meter_cpu else [])
        self.gpu_indices: list[int] = list(self._monitor.gpu_indices)
        self.cpu_indices: list[int] = list(self._monitor.cpu_indices)
        self._sync = bool(self.gpu_indices) and _torch_has_cuda()
        self.power_model = power_model if not self.cpu_indices else None
        #: CPU metering was asked for, but there is neither a counter nor an estimate: reported as unavailable.
        self._cpu_unavailable = meter_cpu and not self.cpu_indices and power_model is None
        self._cpu_time0: dict[str, float] = {}

    @property
    def gpus(self) -> GPUs:
        """Zeus's GPU collection the meter reads (for telemetry)."""
        return self._monitor.gpus

    def gpu_source(self, index: int) -> Source:
        """Where a GPU's energy comes from."""
        return "counter" if self._monitor.gpus.supports_get_total_energy_consumption(index) else "power_integration"

    def measured_domains(self) -> list[str]:
        """Domains with a hardware source (what an idle baseline can be measured for)."""
        domains = [f"gpu{i}" for i in self.gpu_indices] + [f"cpu{i}" for i in self.cpu_indices]
        cpus = getattr(self._monitor.cpus, "cpus", [])
        domains += [
            f"dram{i}" for i in self.cpu_indices if i < len(cpus) and cpus[i].supports_get_dram_energy_consumption()
        ]
        return domains

    def begin(self, key: str) -> None:
        """Open window `key` (after synchronising CUDA where GPUs are metered)."""
        self._cpu_time0[key] = time.process_time()
        self._monitor.begin_window(key, sync_execution=self._sync)

    def end(self, key: str) -> WindowReading:
        """Close window `key` and read every domain."""
        measurement = self._monitor.end_window(key, sync_execution=self._sync)
        cpu_time_s = time.process_time() - self._cpu_time0.pop(key)
        readings = [
            DomainReading(f"gpu{i}", self.gpu_source(i), measurement.gpu_energy.get(i)) for i in self.gpu_indices
        ]
        readings += [DomainReading(f"cpu{i}", "counter", e) for i, e in (measurement.cpu_energy or {}).items()]
        readings += [DomainReading(f"dram{i}", "counter", e) for i, e in (measurement.dram_energy or {}).items()]
        if self.power_model is not None:
            total_j, net_j = self.power_model.energy_j(measurement.time, cpu_time_s)
            readings.append(DomainReading("host_cpu", "estimate", total_j, net_j))
        elif self._cpu_unavailable:
            readings.append(DomainReading("host_cpu", "unavailable", None))
        return WindowReading(duration_s=measurement.time, cpu_time_s=cpu_time_s, domains=tuple(readings))

    def instant_power_w(self) -> dict[str, float]:
        """Current power of each metered GPU, watts."""
        return {f"gpu{i}": self._monitor.gpus.get_instant_power_usage(i) / 1000.0 for i in self.gpu_indices}

    def temperatures_c(self) -> dict[str, float]:
        """Current temperature of each metered GPU, Celsius (empty without GPUs)."""
        return {f"gpu{i}": float(self._monitor.gpus.get_gpu_temperature(i)) for i in self.gpu_indices}
