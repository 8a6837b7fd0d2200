"""The host-CPU power model used where no CPU counter exists; its output is always labelled `estimate`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CpuPowerModel:
    """P = idle + (full - idle) x utilisation, with utilisation = this process's CPU time / (duration x cores).

    full = `watts_per_core` x `logical_cores`; idle = `idle_fraction` x full. Energy over a window is then
    idle x duration_s + (full - idle) x cpu_time_s / logical_cores, and the part above idle is the net estimate.
    """

    watts_per_core: float
    idle_fraction: float
    logical_cores: int

    @property
    def full_load_power_w(self) -> float:
        """Modelled power with every logical core busy, watts."""
        return self.watts_per_core * self.logical_cores

    @property
    def idle_power_w(self) -> float:
        """Modelled idle power, watts."""
        return self.full_load_power_w * self.idle_fraction

    def energy_j(self, duration_s: float, cpu_time_s: float) -> tuple[float, float]:
        """(total, net above idle) estimated joules for a window of `duration_s` using `cpu_time_s` CPU seconds."""
        dynamic_j = (self.full_load_power_w - self.idle_power_w) * cpu_time_s / self.logical_cores
        return self.idle_power_w * duration_s + dynamic_j, dynamic_j

    def assumptions(self) -> dict[str, Any]:
        """The model's inputs and formula, stored with every estimate."""
        return {
            **asdict(self),
            "full_load_power_w": self.full_load_power_w,
            "idle_power_w": self.idle_power_w,
            "formula": "idle_power_w * duration_s + (full_load_power_w - idle_power_w) * process_cpu_time_s "
            "/ logical_cores",
        }
