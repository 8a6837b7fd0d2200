"""MachineFacts: what validation needs to know about this machine, read cheaply (NVML, find_spec; no torch)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lem.errors import LemError


@dataclass(frozen=True)
class GpuFact:
    """One visible CUDA device; `index` is as the process sees it (after CUDA_VISIBLE_DEVICES)."""

    index: int
    name: str
    compute_capability: tuple[int, int]


@dataclass(frozen=True)
class MachineFacts:
    """Visible GPUs and installed optional packages."""

    gpus: tuple[GpuFact, ...] = ()
    packages: frozenset[str] = field(default_factory=frozenset)

    def has(self, package: str) -> bool:
        """Whether `package` is importable here."""
        return package in self.packages


#: Optional packages whose presence changes what a config can do.
OPTIONAL_PACKAGES = ("torch", "transformers", "vllm", "tensorrt_llm", "flash_attn", "bitsandbytes", "datasets")


#: How CUDA_VISIBLE_DEVICES names a MIG instance (`MIG-<uuid>`, or `MIG-GPU-<uuid>/<gi>/<ci>` before CUDA 11.2).
MIG_PREFIX = "MIG-"
#: Why lem refuses MIG: the end of every refusal.
_MIG_REASON = (
    "NVML reports a whole GPU's power, not a slice's, so lem meters whole GPUs only: set CUDA_VISIBLE_DEVICES to "
    "GPU indices or GPU-... UUIDs of GPUs without MIG"
)


def _mig_refusal(what: str) -> LemError:
    return LemError(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}: {what}; {_MIG_REASON}")


def _nvml_index(entry: str, count: int, uuids: list[str]) -> int | None:
    """The NVML index one CUDA_VISIBLE_DEVICES entry names: an index, or a GPU UUID or a unique prefix of one."""
    if entry.startswith(MIG_PREFIX):
        raise _mig_refusal(f"{entry!r} is a MIG instance")
    if entry.isdigit():
        return int(entry) if int(entry) < count else None
    matches = [i for i, uuid in enumerate(uuids) if entry.startswith("GPU-") and uuid.startswith(entry)]
    return matches[0] if len(matches) == 1 else None


def visible_nvml_indices() -> list[int]:
    """NVML indices of the GPUs this process may use, in CUDA's order (the caller has initialised NVML).

    CUDA_VISIBLE_DEVICES unset: every GPU. Its entries are indices (taken as they are) or GPU UUIDs, whole or a
    unique prefix (found by enumerating NVML's index → UUID); as in CUDA, the list ends before the first entry that
    names no GPU, or one named before. A MIG instance, or a visible GPU in MIG mode, is a one-line LemError.
    """
    import pynvml

    count = pynvml.nvmlDeviceGetCount()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    indices = list(range(count)) if visible is None else []
    if visible is not None:
        uuids = [pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        for entry in visible.split(","):
            index = _nvml_index(entry.strip(), count, uuids)
            if index is None or index in indices:
                break
            indices.append(index)
    for index in indices:
        try:
            mig_mode, _pending = pynvml.nvmlDeviceGetMigMode(pynvml.nvmlDeviceGetHandleByIndex(index))
        except pynvml.NVMLError_NotSupported:  # before Ampere
            continue
        if mig_mode == pynvml.NVML_DEVICE_MIG_ENABLE:
            raise _mig_refusal(f"GPU {index} is in MIG mode")
    return indices


def _probe_gpus() -> tuple[GpuFact, ...]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library, no device: no GPUs
        return ()
    try:
        facts = []
        for visible_index, nvml_index in enumerate(visible_nvml_indices()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
            name = pynvml.nvmlDeviceGetName(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            facts.append(GpuFact(visible_index, name if isinstance(name, str) else name.decode(), (major, minor)))
        return tuple(facts)
    finally:
        pynvml.nvmlShutdown()


def probe_machine() -> MachineFacts:
    """Read this machine's facts; takes milliseconds and imports no ML framework."""
    packages = frozenset(p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is not None)
    return MachineFacts(gpus=_probe_gpus(), packages=packages)


@dataclass(frozen=True)
class SkipCondition:
    """A parameter value that cannot be exercised on some machines; `applies(facts)` is True where it cannot."""

    param: str
    value: Any
    reason: str
    applies: Callable[[MachineFacts], bool]


#: Why fp8 needs new hardware, for the skip conditions of every backend that offers it.
FP8_REASON = "needs a GPU of compute capability 8.9 or newer (Ada, Hopper)"


def below_sm89(facts: MachineFacts) -> bool:
    """No GPU, or one older than compute capability 8.9 (fp8 needs Ada or Hopper)."""
    cc = min((g.compute_capability for g in facts.gpus), default=None)
    return cc is None or cc < (8, 9)


def needs_cuda_and(package: str) -> Callable[[MachineFacts], bool]:
    """A predicate true where there is no GPU or `package` is missing."""
    return lambda facts: not facts.gpus or not facts.has(package)


def needs_gpus(count: int) -> Callable[[MachineFacts], bool]:
    """A predicate true where fewer than `count` GPUs are visible."""
    return lambda facts: len(facts.gpus) < count
