"""MachineFacts: what validation needs to know about this machine, read cheaply (NVML, find_spec; no torch)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field


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


def visible_nvml_indices(count: int) -> list[int]:
    """NVML indices of the devices CUDA_VISIBLE_DEVICES exposes (comma-separated integers only)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count))
    indices = []
    for token in visible.split(","):
        token = token.strip()
        if not token.isdigit() or int(token) >= count:
            break
        indices.append(int(token))
    return indices


def _probe_gpus() -> tuple[GpuFact, ...]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library, no device: no GPUs
        return ()
    try:
        facts = []
        for visible_index, nvml_index in enumerate(visible_nvml_indices(pynvml.nvmlDeviceGetCount())):
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
