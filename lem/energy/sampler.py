"""TimeseriesSampler: a daemon thread that samples device telemetry at a fixed rate beside the measured window.

Per sample: wall time; per GPU power (W) and temperature (C) through Zeus, SM clock (MHz) and utilisation (%)
through NVML where the device is a real NVML device; host CPU utilisation (%) and frequency (MHz) via psutil.
Samples are kept as tuples in memory and only turned into a table after the window closes. A device that stops
answering ends the sampling; `error` says why. The same samples integrate the power of GPUs without an energy
counter (`energy_j`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import psutil

from lem.energy.devices import nvml_handle
from lem.energy.integrate import achieved_rate_hz, interval_energies_j

if TYPE_CHECKING:
    import pandas as pd
    from zeus.device.gpu.common import GPUs


class TimeseriesSampler:
    """Samples every `1 / sample_rate_hz` seconds between `start()` and `stop()`."""

    def __init__(self, gpus: GPUs, gpu_indices: list[int], sample_rate_hz: float) -> None:
        self._gpus = gpus
        self.gpu_indices = gpu_indices
        self._period_s = 1.0 / sample_rate_hz
        self._rows: list[tuple[Any, ...]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lem-timeseries", daemon=True)
        self._handles = {i: nvml_handle(gpus, i) for i in gpu_indices}
        #: Why sampling stopped early (a device read failed), or None.
        self.error: Exception | None = None

    def _gpu_row(self, index: int) -> tuple[float, float, float | None, float | None]:
        power_w = self._gpus.get_instant_power_usage(index) / 1000.0
        temperature_c = float(self._gpus.get_gpu_temperature(index))
        handle = self._handles[index]
        if handle is None:
            return power_w, temperature_c, None, None
        import pynvml

        sm_clock = float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM))
        utilisation = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        return power_w, temperature_c, sm_clock, utilisation

    def _sample(self) -> None:
        now = time.time()
        frequency = psutil.cpu_freq()
        host = (psutil.cpu_percent(interval=None), frequency.current if frequency else None)
        self._rows.append((now, host, tuple(self._gpu_row(i) for i in self.gpu_indices)))

    def _sample_or_stop(self) -> bool:
        """Take a sample; on a failed read, keep the error and say False."""
        try:
            self._sample()
        except Exception as ex:  # e.g. NVML: GPU is lost
            self.error = ex
            return False
        return True

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and self._sample_or_stop():
            next_at += self._period_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        """Start sampling (first sample immediately)."""
        psutil.cpu_percent(interval=None)  # primes the utilisation counter
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and take one last sample, so the window's end is covered (never raises: see `error`)."""
        self._stop.set()
        self._thread.join()
        if self.error is None:
            self._sample_or_stop()

    def energy_j(self, index: int, start_s: float, end_s: float) -> float | None:
        """Energy of GPU `index` between two `time.time()` instants, joules: trapezoids over its power samples, with
        the power at each end interpolated from the samples around it (held beyond the first and last, so one
        sample gives its power x duration); None without samples."""
        rows = list(self._rows)
        if not rows:
            return None
        column = self.gpu_indices.index(index)
        power_w = [row[2][column][0] for row in rows]
        return float(interval_energies_j([row[0] for row in rows], power_w, [start_s, end_s])[0])

    def achieved_rate_hz(self) -> float | None:
        """Samples per second actually taken; None with fewer than two samples."""
        return achieved_rate_hz([row[0] for row in self._rows])

    def __len__(self) -> int:
        return len(self._rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: `time_s` (from the first sample), `timestamp`, host columns, `gpu<i>_*` columns."""
        import pandas as pd

        columns: dict[str, list[Any]] = {"timestamp": [], "time_s": [], "host_cpu_util_pct": [], "host_cpu_mhz": []}
        metrics = ("power_w", "temperature_c", "sm_clock_mhz", "util_pct")
        for i in self.gpu_indices:
            for metric in metrics:
                columns[f"gpu{i}_{metric}"] = []
        origin = self._rows[0][0] if self._rows else 0.0
        for timestamp, (cpu_util, cpu_mhz), gpu_rows in self._rows:
            columns["timestamp"].append(timestamp)
            columns["time_s"].append(timestamp - origin)
            columns["host_cpu_util_pct"].append(cpu_util)
            columns["host_cpu_mhz"].append(cpu_mhz)
            for i, values in zip(self.gpu_indices, gpu_rows, strict=True):
                for metric, value in zip(metrics, values, strict=True):
                    columns[f"gpu{i}_{metric}"].append(value)
        return pd.DataFrame(columns)
