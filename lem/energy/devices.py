"""Device look-ups shared by the energy tools: visible GPUs through Zeus, NVML handles, GPU occupancy."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zeus.device.gpu.common import GPUs


def zeus_gpus() -> GPUs | None:
    """Zeus's GPU collection (honours its test seam `zeus.device.gpu._gpus`); None where no GPU library answers."""
    from zeus.device.gpu import ZeusGPUInitError, get_gpus

    try:
        return get_gpus()
    except ZeusGPUInitError:
        return None


def visible_gpu_indices() -> list[int]:
    """Indices of the GPUs this process can use, as Zeus sees them (after CUDA_VISIBLE_DEVICES)."""
    gpus = zeus_gpus()
    return list(range(len(gpus))) if gpus is not None else []


def nvml_handle(gpus: GPUs, index: int) -> Any:
    """The NVML handle behind a Zeus NVIDIA GPU, or None for other (e.g. test) devices."""
    return getattr(gpus.gpus[index], "handle", None)


def gpus_used_by_others(gpus: GPUs, indices: list[int]) -> bool | None:
    """Whether a process other than this one has a compute context on any of `indices`; None if NVML can't say."""
    handles = [nvml_handle(gpus, i) for i in indices]
    if not handles or any(h is None for h in handles):
        return None
    import pynvml

    own = os.getpid()
    return any(p.pid != own for h in handles for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h))
