"""Device look-ups shared by the energy tools: visible GPUs through Zeus, NVML handles, who else uses the GPUs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psutil

from lem.config.machine import visible_nvml_indices

if TYPE_CHECKING:
    from zeus.device.gpu.common import GPUs


@contextmanager
def zeus_sees_nvml_indices() -> Iterator[None]:
    """Inside, CUDA_VISIBLE_DEVICES holds the NVML indices lem resolved from it (indices, GPU UUIDs; MIG refused),
    the only form Zeus parses (with int(), when it first enumerates GPUs, which it then caches). The user's value is
    back on exit, so CUDA sees it unchanged. Nothing changes where the variable is unset or NVML is missing."""
    from zeus.device.gpu import nvml_is_available

    original = os.environ.get("CUDA_VISIBLE_DEVICES")
    if original is None or not nvml_is_available():
        yield
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, visible_nvml_indices()))
    try:
        yield
    finally:
        os.environ["CUDA_VISIBLE_DEVICES"] = original


def zeus_gpus() -> GPUs | None:
    """Zeus's GPU collection over the visible GPUs, in CUDA's order; None where no GPU library answers."""
    from zeus.device.gpu import ZeusGPUInitError, get_gpus

    with zeus_sees_nvml_indices():
        try:
            return get_gpus()
        except ZeusGPUInitError:
            return None


def visible_gpu_indices() -> list[int]:
    """Indices of the GPUs this process can use, as CUDA and Zeus number them (after CUDA_VISIBLE_DEVICES)."""
    gpus = zeus_gpus()
    return list(range(len(gpus))) if gpus is not None else []


def nvml_handle(gpus: GPUs, index: int) -> Any:
    """The NVML handle behind a Zeus NVIDIA GPU, or None for a device without one (e.g. AMD)."""
    return getattr(gpus.gpus[index], "handle", None)


def own_process_ids() -> set[int]:
    """This process and all its descendants (engine workers and their children)."""
    process = psutil.Process()
    return {process.pid, *(child.pid for child in process.children(recursive=True))}


def gpu_sharing(gpus: GPUs, indices: list[int], lem_holds_gpus: bool) -> str | None:
    """Who computes on GPUs `indices`: "shared" (a process outside lem's process tree has a context on one),
    "exclusive" (none), or "unknown" where lem holds the GPUs but none of NVML's process ids is in its tree (NVML
    reports the host's ids, e.g. inside a container); None where NVML cannot list processes."""
    handles = [nvml_handle(gpus, i) for i in indices]
    if not handles or any(h is None for h in handles):
        return None
    import pynvml

    try:
        pids = {p.pid for h in handles for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)}
    except pynvml.NVMLError_NotSupported:
        return None
    own = own_process_ids()
    if lem_holds_gpus and not pids & own:
        return "unknown"
    return "shared" if pids - own else "exclusive"


def worst_sharing(*verdicts: str | None) -> str | None:
    """The worst of several `gpu_sharing` verdicts (e.g. before and after a window): shared, unknown, exclusive;
    None where none was made."""
    return next((v for v in ("shared", "unknown", "exclusive") if v in verdicts), None)
