"""EnergyMeter: one window over exactly the GPUs and CPU packages a run uses, each figure with its source.

Sources: `counter` (NVML energy counter through Zeus, RAPL), `power_integration` (GPUs older than Volta have no
counter: lem's sampler reads their power through the window and integrates it), `estimate` (CpuPowerModel, only
where no CPU counter exists and the config asks for it). Zeus is given only the GPUs with a counter, so its
PowerMonitor (spawned pollers) never starts: lem's sampler is the one poller, the window's timeseries sampler where
one runs, else the meter's own for that window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lem.energy.devices import zeus_gpus, zeus_sees_nvml_indices
from lem.energy.estimate import CpuPowerModel
from lem.energy.sampler import TimeseriesSampler

if TYPE_CHECKING:
    from zeus.device.gpu.common import GPUs

Source = Literal["counter", "power_integration", "estimate", "unavailable"]


@dataclass(frozen=True)
class DomainReading:
    """Energy of one domain over one window. `domain` is `gpu<i>`, `cpu<i>`, `dram<i>` or `host_cpu`.

    `estimated_net_j` is set only for estimates: the model's energy above its own idle power. `sample_rate_hz` only
    for `power_integration`: the power samples per second the integration achieved. `note` says why a reading is
    unavailable where the meter knows better than "no counter".
    """

    domain: str
    source: Source
    energy_j: float | None
    estimated_net_j: float | None = None
    sample_rate_hz: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class CounterMark:
    """Every counter domain's cumulative energy at one instant: `time_s` (`time.time()`), joules per domain since an
    arbitrary origin (differences between marks are what count)."""

    time_s: float
    energy_j: dict[str, float]


@dataclass(frozen=True)
class WindowReading:
    """One closed window: its start (`time.time()`) and duration (seconds), a reading per domain, what went wrong in it
    (quality flags, e.g. `energy_counter_backwards:gpu0`), and the counter marks taken in it (one at each edge and one
    at each `mark`), in time order."""

    duration_s: float
    cpu_time_s: float
    domains: tuple[DomainReading, ...]
    flags: tuple[str, ...] = ()
    started_s: float = 0.0
    marks: tuple[CounterMark, ...] = ()


#: Why a GPU whose counter went backwards has no energy (with no power samples to integrate instead).
_BACKWARDS_NOTE = "the energy counter went backwards in the window (a driver reset?) and no power samples cover it"


@dataclass(frozen=True)
class _OpenWindow:
    """A window between begin and end: its start (`time.time()`), process CPU time then, the sampler that integrates
    GPUs without a counter (`owned`: started by the meter for this window), and the counter marks taken so far."""

    started_s: float
    cpu_time_s: float
    sampler: TimeseriesSampler | None
    owned: bool
    marks: list[CounterMark]


def _torch_has_cuda() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


class EnergyMeter:
    """Zeus's ZeusMonitor on the GPUs with an energy counter (and RAPL packages), lem's sampler for the GPUs without
    one, plus the labelled CPU estimate where configured."""

    def __init__(
        self,
        gpu_indices: list[int],
        *,
        meter_gpu: bool,
        meter_cpu: bool,
        power_model: CpuPowerModel | None,
        sample_rate_hz: float = 10.0,
        work_in_process: bool = True,
    ) -> None:
        """`work_in_process`: the metered GPUs compute for this process (offline backends), so windows synchronise
        CUDA at their edges; False where another process does the work (a server, scenario=serving): the meter then
        never touches CUDA, so it creates no CUDA context in this process."""
        from zeus.monitor import ZeusMonitor

        self.gpu_indices: list[int] = list(gpu_indices) if meter_gpu else []
        gpus = zeus_gpus() if self.gpu_indices else None
        #: GPUs without an energy counter (before Volta): integrated from samples taken `sample_rate_hz` times a second.
        self.integrated_gpus = [
            i for i in self.gpu_indices if gpus is not None and not gpus.supports_get_total_energy_consumption(i)
        ]
        self._counter_gpus = [i for i in self.gpu_indices if i not in self.integrated_gpus]
        with zeus_sees_nvml_indices():
            self._monitor = ZeusMonitor(gpu_indices=self._counter_gpus, cpu_indices=None if meter_cpu else [])
        self.cpu_indices: list[int] = list(self._monitor.cpu_indices)
        self._sample_rate_hz = sample_rate_hz
        #: The metered GPUs are CUDA devices of this process: lem's work holds them, and windows synchronise them.
        self.on_cuda = work_in_process and bool(self.gpu_indices) and _torch_has_cuda()
        self.power_model = power_model if not self.cpu_indices else None
        #: CPU metering was asked for, but there is neither a counter nor an estimate: reported as unavailable.
        self._cpu_unavailable = meter_cpu and not self.cpu_indices and power_model is None
        self._open: dict[str, _OpenWindow] = {}

    @property
    def gpus(self) -> GPUs:
        """Zeus's GPU collection the meter reads (for telemetry)."""
        return self._monitor.gpus

    def measured_domains(self) -> list[str]:
        """Domains with a hardware source (what an idle baseline can be measured for)."""
        domains = [f"gpu{i}" for i in self.gpu_indices] + [f"cpu{i}" for i in self.cpu_indices]
        cpus = getattr(self._monitor.cpus, "cpus", [])
        domains += [
            f"dram{i}" for i in self.cpu_indices if i < len(cpus) and cpus[i].supports_get_dram_energy_consumption()
        ]
        return domains

    def _synchronise(self) -> None:
        """Wait for the work queued on the metered GPUs (CUDA), as Zeus would for its own GPUs only."""
        if self.on_cuda:
            from zeus.utils.framework import sync_execution

            sync_execution(self.gpu_indices)

    def begin(self, key: str, sampler: TimeseriesSampler | None = None) -> None:
        """Open window `key` (after synchronising CUDA). GPUs without a counter are integrated from `sampler` (running
        and covering them: the window's timeseries sampler), or else from a sampler the meter starts here."""
        self._synchronise()
        owned = sampler is None and bool(self.integrated_gpus)
        if owned:
            sampler = TimeseriesSampler(self.gpus, self.integrated_gpus, self._sample_rate_hz)
            sampler.start()
        self._open[key] = _OpenWindow(time.time(), time.process_time(), sampler, owned, [])
        self._monitor.begin_window(key, sync_execution=False)
        self.mark(key)

    def mark(self, key: str) -> None:
        """Read every counter domain's cumulative energy now into window `key` (boundaries inside it, which later
        share its energy among requests). A few counter reads: no synchronisation, no sampling."""
        energy_j = {f"gpu{i}": self.gpus.get_total_energy_consumption(i) / 1000.0 for i in self._counter_gpus}
        for i in self.cpu_indices:
            reading = self._monitor.cpus.get_total_energy_consumption(i)
            energy_j[f"cpu{i}"] = reading.cpu_mj / 1000.0
            if reading.dram_mj is not None:
                energy_j[f"dram{i}"] = reading.dram_mj / 1000.0
        self._open[key].marks.append(CounterMark(time.time(), energy_j))

    def _integrated(self, index: int, window: _OpenWindow, duration_s: float) -> DomainReading:
        """GPU `index`'s power over the window, integrated from the window's sampler."""
        sampler = window.sampler
        assert sampler is not None
        if sampler.error is not None:
            raise sampler.error  # the GPU stopped answering: the window's energy is lost
        energy_j = sampler.energy_j(index, window.started_s, window.started_s + duration_s)
        source: Source = "unavailable" if energy_j is None else "power_integration"
        return DomainReading(f"gpu{index}", source, energy_j, sample_rate_hz=sampler.achieved_rate_hz())

    def end(self, key: str) -> WindowReading:
        """Close window `key` and read every domain. A counter that went backwards (a driver reset) is flagged, and
        its GPU integrated from the window's sampler where that covers it, else unavailable: never negative."""
        self._synchronise()
        self.mark(key)
        measurement = self._monitor.end_window(key, sync_execution=False)
        window = self._open.pop(key)
        cpu_time_s = time.process_time() - window.cpu_time_s
        if window.owned:
            assert window.sampler is not None
            window.sampler.stop()
        readings, flags = [], []
        for i in self.gpu_indices:
            if i in self.integrated_gpus:
                readings.append(self._integrated(i, window, measurement.time))
            elif measurement.gpu_energy[i] >= 0:
                readings.append(DomainReading(f"gpu{i}", "counter", measurement.gpu_energy[i]))
            else:
                flags.append(f"energy_counter_backwards:gpu{i}")
                covered = window.sampler is not None and i in window.sampler.gpu_indices
                readings.append(
                    self._integrated(i, window, measurement.time)
                    if covered
                    else DomainReading(f"gpu{i}", "unavailable", None, note=_BACKWARDS_NOTE)
                )
        readings += [DomainReading(f"cpu{i}", "counter", e) for i, e in (measurement.cpu_energy or {}).items()]
        readings += [DomainReading(f"dram{i}", "counter", e) for i, e in (measurement.dram_energy or {}).items()]
        if self.power_model is not None:
            total_j, net_j = self.power_model.energy_j(measurement.time, cpu_time_s)
            readings.append(DomainReading("host_cpu", "estimate", total_j, net_j))
        elif self._cpu_unavailable:
            readings.append(DomainReading("host_cpu", "unavailable", None))
        return WindowReading(
            measurement.time, cpu_time_s, tuple(readings), tuple(flags), window.started_s, tuple(window.marks)
        )

    def close(self) -> None:
        """Stop the samplers of windows that never ended (the run failed inside them)."""
        for window in self._open.values():
            if window.owned:
                assert window.sampler is not None
                window.sampler.stop()
        self._open.clear()

    def instant_power_w(self) -> dict[str, float]:
        """Current power of each metered GPU, watts."""
        return {f"gpu{i}": self._monitor.gpus.get_instant_power_usage(i) / 1000.0 for i in self.gpu_indices}

    def temperatures_c(self) -> dict[str, float]:
        """Current temperature of each metered GPU, Celsius (empty without GPUs)."""
        return {f"gpu{i}": float(self._monitor.gpus.get_gpu_temperature(i)) for i in self.gpu_indices}
