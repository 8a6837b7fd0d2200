"""Hardware stand-ins through Zeus's own seams: a GPUs subclass with a known energy counter, a fake RAPL tree.

Nothing of lem's is patched: Zeus's `zeus.device.gpu._gpus` singleton and `zeus.device.cpu.rapl.RAPL_DIR`
are the documented places to put test devices.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import zeus.device.cpu as zeus_cpu
import zeus.device.cpu.rapl as zeus_rapl
import zeus.device.gpu as zeus_gpu
from zeus.device.gpu.common import GPUs


class _Device:
    """One fake GPU: energy = power_w x seconds since creation."""

    def __init__(self, power_w: float, temperature_c: int) -> None:
        self.power_w = power_w
        self.temperature_c = temperature_c
        self.created = time.time()


class ConstantPowerGPUs(GPUs):
    """GPUs drawing a constant power each; the NVML-style counter reports millijoules since creation."""

    def __init__(self, powers_w: list[float], temperature_c: int = 40) -> None:
        self._devices = [_Device(p, temperature_c) for p in powers_w]

    def __del__(self) -> None:
        pass

    @property
    def gpus(self) -> list[_Device]:  # type: ignore[override]
        return self._devices

    def get_name(self, gpu_index: int) -> str:
        return "FakeGPU"

    def supports_get_total_energy_consumption(self, gpu_index: int) -> bool:
        return True

    def get_total_energy_consumption(self, gpu_index: int) -> int:
        device = self._devices[gpu_index]
        return int((time.time() - device.created) * device.power_w * 1000)

    def get_instant_power_usage(self, gpu_index: int) -> int:
        return int(self._devices[gpu_index].power_w * 1000)

    def get_gpu_temperature(self, gpu_index: int) -> int:
        return self._devices[gpu_index].temperature_c


@contextmanager
def fake_gpus(powers_w: list[float]) -> Iterator[ConstantPowerGPUs]:
    """Install ConstantPowerGPUs as Zeus's GPU singleton for the duration."""
    previous = zeus_gpu._gpus
    zeus_gpu._gpus = ConstantPowerGPUs(powers_w)
    try:
        yield zeus_gpu._gpus
    finally:
        zeus_gpu._gpus = previous


@contextmanager
def fake_rapl(root: Path, package_w: float, dram_w: float) -> Iterator[Path]:
    """A powercap tree (package 0 with a dram subzone) whose energy_uj files a thread advances at constant power."""
    package = root / "intel-rapl:0"
    dram = package / "intel-rapl:0:0"
    dram.mkdir(parents=True)
    for zone, name in ((package, "package-0"), (dram, "dram")):
        (zone / "name").write_text(name + "\n")
        (zone / "max_energy_range_uj").write_text("262143328850\n")
        (zone / "energy_uj").write_text("0\n")
    stop = threading.Event()
    started = time.time()

    def write(zone: Path, energy_uj: int) -> None:
        tmp = zone / "energy_uj.tmp"
        tmp.write_text(f"{energy_uj}\n")
        os.replace(tmp, zone / "energy_uj")

    def advance() -> None:
        while not stop.wait(0.005):
            elapsed = time.time() - started
            write(package, int(elapsed * package_w * 1e6))
            write(dram, int(elapsed * dram_w * 1e6))

    thread = threading.Thread(target=advance, daemon=True)
    thread.start()
    previous_dir, previous_cpus = zeus_rapl.RAPL_DIR, zeus_cpu._cpus
    zeus_rapl.RAPL_DIR = str(root)
    zeus_cpu._cpus = None
    zeus_rapl.rapl_is_available.cache_clear()  # Zeus caches the directory check
    try:
        yield root
    finally:
        stop.set()
        thread.join()
        zeus_rapl.RAPL_DIR, zeus_cpu._cpus = previous_dir, previous_cpus
        zeus_rapl.rapl_is_available.cache_clear()
