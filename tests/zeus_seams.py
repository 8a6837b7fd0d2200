"""Hardware stand-ins below Zeus: simulated NVIDIA GPUs at the level of nvidia-ml-py's functions, a fake RAPL tree.

Nothing of lem's or Zeus's is replaced. `simulated_gpus` swaps pynvml's module functions (what the driver library
answers: handles, names, UUIDs, architecture, power in mW, the energy counter in mJ, temperature, clocks,
utilisation, processes, MIG mode, NVML's error codes) and empties Zeus's GPU cache, so that Zeus's own `NVIDIAGPUs`
enumerates the simulated devices through its real code, and lem's sampler reads them through pynvml. It also
exports the devices (`LEM_SIMULATED_GPUS`, with tests/gpu_site on PYTHONPATH), so that Python processes started
meanwhile (`python -m lem`, Zeus's spawned power pollers) see the same GPUs as they were at the start.
`fake_rapl` points Zeus's documented `RAPL_DIR` at a powercap tree.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pynvml
import zeus.device.cpu as zeus_cpu
import zeus.device.cpu.rapl as zeus_rapl
import zeus.device.gpu as zeus_gpu

#: The environment variable that carries the simulated GPUs to child processes (JSON).
ENV_VARIABLE = "LEM_SIMULATED_GPUS"
#: The folder whose sitecustomize.py installs them there.
SITE_DIR = Path(__file__).resolve().parent / "gpu_site"
#: The GPU/compute instance NVML gives a process outside MIG.
_NOT_IN_MIG = 0xFFFFFFFF
#: How long the simulated driver has been loaded when a GPU is created: its counter starts at that many seconds x 60 W.
DRIVER_UPTIME_S = 86_400.0


@dataclass
class SimulatedGpu:
    """One GPU as NVML reports it. `power_w` in watts: change it any time with `set_power_w`, and the energy counter
    (`energy_mj`, since the driver loaded: a day at 60 W to begin with) integrates it over real time. Below Volta
    (`architecture`) there is no energy counter, and below Ampere no MIG, as on real devices. `pids`: processes with
    a compute context on it. `lost`: every call on it raises NVMLError_GpuIsLost, as for a GPU that fell off the
    bus."""

    power_w: float = 60.0
    architecture: int = pynvml.NVML_DEVICE_ARCH_HOPPER
    compute_capability: tuple[int, int] = (9, 0)
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = field(default_factory=lambda: f"GPU-{uuid.uuid4()}")
    temperature_c: int = 40
    sm_clock_mhz: int = 1980
    utilisation_pct: int = 0
    power_limit_w: float = 700.0
    mig_enabled: bool = False
    pids: list[int] = field(default_factory=list)
    lost: bool = False
    energy_mj: float = field(default=DRIVER_UPTIME_S * 60.0 * 1000, repr=False)
    energy_at_s: float = field(default_factory=time.time, repr=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def _integrate(self) -> None:
        now = time.time()
        self.energy_mj += self.power_w * 1000.0 * (now - self.energy_at_s)
        self.energy_at_s = now

    def set_power_w(self, power_w: float) -> None:
        """Draw `power_w` watts from now on."""
        with self._lock:
            self._integrate()
            self.power_w = power_w

    def total_energy_mj(self) -> int:
        """The energy counter now, millijoules."""
        with self._lock:
            self._integrate()
            return int(self.energy_mj)

    def reset_energy_counter(self) -> None:
        """The counter restarts from 0, as after a driver reload: a window open across it reads backwards."""
        with self._lock:
            self._integrate()
            self.energy_mj = 0.0

    def describe(self) -> dict[str, Any]:
        """Every field, for a child process (JSON)."""
        with self._lock:
            self._integrate()
            return dataclasses.asdict(self)


def _raise(code: int) -> NoReturn:
    raise pynvml.NVMLError(code)


class SimulatedNvml:
    """pynvml's module functions over a list of SimulatedGpu, with NVML's init reference count and error codes."""

    def __init__(self, gpus: list[SimulatedGpu]) -> None:
        self.gpus = gpus
        self._inits = 0

    def _check_init(self) -> None:
        if self._inits == 0:
            _raise(pynvml.NVML_ERROR_UNINITIALIZED)

    def _device(self, handle: Any) -> SimulatedGpu:
        self._check_init()
        if not any(handle is gpu for gpu in self.gpus):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if handle.lost:
            _raise(pynvml.NVML_ERROR_GPU_IS_LOST)
        return handle

    def _field_values(self, handle: Any, field_ids: list[Any]) -> Any:
        gpu = self._device(handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for value, field_id in zip(values, field_ids, strict=True):
            value.fieldId, value.scopeId = field_id if isinstance(field_id, tuple) else (field_id, 0)
            value.timestamp = int(time.time() * 1e6)
            power = value.fieldId in (pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_FI_DEV_POWER_AVERAGE)
            if power and value.scopeId == pynvml.NVML_POWER_SCOPE_GPU:
                value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                value.value.uiVal = int(gpu.power_w * 1000)
                value.nvmlReturn = pynvml.NVML_SUCCESS
            else:
                value.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    def _energy(self, handle: Any) -> int:
        gpu = self._device(handle)
        if gpu.architecture < pynvml.NVML_DEVICE_ARCH_VOLTA:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu.total_energy_mj()

    def _mig_mode(self, handle: Any) -> list[int]:
        gpu = self._device(handle)
        if gpu.architecture < pynvml.NVML_DEVICE_ARCH_AMPERE:
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig_enabled else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def _processes(self, handle: Any) -> list[Any]:
        info = {"usedGpuMemory": 512 * 2**20, "gpuInstanceId": _NOT_IN_MIG, "computeInstanceId": _NOT_IN_MIG}
        return [pynvml.nvmlFriendlyObject({"pid": pid, **info}) for pid in self._device(handle).pids]

    def _handle_by_index(self, index: int) -> SimulatedGpu:
        self._check_init()
        if not 0 <= index < len(self.gpus):
            _raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def _handle_by_uuid(self, gpu_uuid: str | bytes) -> SimulatedGpu:
        self._check_init()
        wanted = gpu_uuid.decode() if isinstance(gpu_uuid, bytes) else gpu_uuid
        for gpu in self.gpus:
            if gpu.uuid == wanted:
                return gpu
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def _init(self, *_flags: int) -> None:
        self._inits += 1

    def _shutdown(self) -> None:
        self._check_init()
        self._inits -= 1

    def _count(self) -> int:
        self._check_init()
        return len(self.gpus)

    def functions(self) -> dict[str, Callable[..., Any]]:
        """pynvml's name → the simulated function."""
        device = self._device

        def unsupported(handle: Any) -> None:
            device(handle)
            _raise(pynvml.NVML_ERROR_NOT_SUPPORTED)

        def system(value: Any) -> Callable[[], Any]:
            def read() -> Any:
                self._check_init()
                return value

            return read

        return {
            "nvmlInit": self._init,
            "nvmlInitWithFlags": self._init,
            "nvmlShutdown": self._shutdown,
            "nvmlSystemGetDriverVersion": system("580.95.05"),
            "nvmlSystemGetCudaDriverVersion": system(13000),
            "nvmlSystemGetCudaDriverVersion_v2": system(13000),
            "nvmlDeviceGetCount": self._count,
            "nvmlDeviceGetHandleByIndex": self._handle_by_index,
            "nvmlDeviceGetHandleByUUID": self._handle_by_uuid,
            "nvmlDeviceGetName": lambda h: device(h).name,
            "nvmlDeviceGetUUID": lambda h: device(h).uuid,
            "nvmlDeviceGetArchitecture": lambda h: device(h).architecture,
            "nvmlDeviceGetCudaComputeCapability": lambda h: device(h).compute_capability,
            "nvmlDeviceGetC2cModeInfoV": unsupported,  # not a Grace Hopper superchip
            "nvmlDeviceGetPowerUsage": lambda h: int(device(h).power_w * 1000),
            "nvmlDeviceGetFieldValues": self._field_values,
            "nvmlDeviceGetTotalEnergyConsumption": self._energy,
            "nvmlDeviceGetPowerManagementLimit": lambda h: int(device(h).power_limit_w * 1000),
            "nvmlDeviceGetTemperature": lambda h, _sensor: device(h).temperature_c,
            "nvmlDeviceGetTemperatureV": lambda h, _sensor, *_version: device(h).temperature_c,
            "nvmlDeviceGetClockInfo": lambda h, _clock: device(h).sm_clock_mhz,
            "nvmlDeviceGetUtilizationRates": lambda h: pynvml.c_nvmlUtilization_t(device(h).utilisation_pct, 0),
            "nvmlDeviceGetComputeRunningProcesses": self._processes,
            "nvmlDeviceGetMigMode": self._mig_mode,
        }


def _patch_pynvml(gpus: list[SimulatedGpu]) -> dict[str, Any]:
    """Swap pynvml's functions for the simulation and empty Zeus's GPU cache; returns the originals."""
    functions = SimulatedNvml(gpus).functions()
    originals = {name: getattr(pynvml, name) for name in functions}
    for name, function in functions.items():
        setattr(pynvml, name, function)
    zeus_gpu._gpus = None  # Zeus enumerates again, through the simulated functions
    zeus_gpu.nvml_is_available.cache_clear()
    return originals


@contextmanager
def simulated_gpus(*gpus: SimulatedGpu) -> Iterator[list[SimulatedGpu]]:
    """These GPUs are the machine's NVIDIA GPUs for the duration (in this process and in Python processes it starts)."""
    devices = list(gpus)
    saved_env = {k: os.environ.get(k) for k in (ENV_VARIABLE, "PYTHONPATH")}
    os.environ[ENV_VARIABLE] = json.dumps([gpu.describe() for gpu in devices])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE_DIR), saved_env["PYTHONPATH"]) if p)
    originals = _patch_pynvml(devices)
    try:
        yield devices
    finally:
        zeus_gpu._gpus = None  # Zeus's NVIDIAGPUs shuts NVML down on deletion: still the simulated one
        for name, function in originals.items():
            setattr(pynvml, name, function)
        zeus_gpu.nvml_is_available.cache_clear()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def install_from_environment() -> None:
    """In a child process: the GPUs that `simulated_gpus` exported, for the rest of the process's life."""
    described = json.loads(os.environ[ENV_VARIABLE])
    _patch_pynvml([SimulatedGpu(**{**d, "compute_capability": tuple(d["compute_capability"])}) for d in described])


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
