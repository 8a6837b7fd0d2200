"""`fp_precision=auto`, resolved by every backend the same way from the facts: the checkpoint's dtype and the GPUs.

On a GPU: the checkpoint's dtype when it is 16-bit, else bfloat16, and float16 instead of bfloat16 where a GPU lacks
bfloat16 (compute capability below 8.0). On CPU: float32. A backend that never runs float32 (TensorRT-LLM) resolves
as on a GPU wherever it is, so its defaults validate on any machine. The backend records the result in its LoadInfo
settings (`fp_precision` in results.json's `backend.settings`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lem.backends.checkpoint import declared_dtype
from lem.config.machine import probe_machine
from lem.config.schema import ExperimentConfig

AUTO = "auto"
#: The oldest compute capability with bfloat16 arithmetic (Ampere).
BFLOAT16_MIN_CAPABILITY = (8, 0)


def gpu_capabilities(gpu_indices: Sequence[int]) -> list[tuple[int, int]]:
    """Compute capabilities of the run's GPUs (visible indices), as NVML reports them; [] where NVML knows none."""
    return [gpu.compute_capability for gpu in probe_machine().gpus if gpu.index in gpu_indices]


def resolve_precision(
    requested: str, model: str, gpu_capabilities: Sequence[tuple[int, int]] | None, *, allow_float32: bool = True
) -> str:
    """The precision a run uses: `requested` unless it is "auto" (see the module docstring).

    `gpu_capabilities` is None where the run computes on CPU; an empty list means GPUs of unknown capability.
    """
    if requested != AUTO:
        return requested
    if gpu_capabilities is None and allow_float32:
        return "float32"
    stored = declared_dtype(model)
    precision = stored if stored in ("float16", "bfloat16") else "bfloat16"
    if precision == "bfloat16" and any(cc < BFLOAT16_MIN_CAPABILITY for cc in gpu_capabilities or ()):
        return "float16"
    return precision


def with_resolved_precision(
    config: ExperimentConfig,
    model_path: str,
    gpu_capabilities: Sequence[tuple[int, int]] | None,
    *,
    allow_float32: bool = True,
) -> ExperimentConfig:
    """`config` with fp_precision resolved (a copy; the composed config, and so its hash, keeps "auto")."""
    precision = resolve_precision(config.fp_precision, model_path, gpu_capabilities, allow_float32=allow_float32)
    return dataclasses.replace(config, fp_precision=precision)
