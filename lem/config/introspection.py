"""Introspection derived from the config dataclasses: parameter tables and skip conditions.

Nothing here is a hand-kept list of parameters: every entry comes from a dataclass field and its `param` metadata.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lem.backends.pytorch.config import PyTorchConfig
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.vllm.config import VLLMConfig
from lem.config.machine import MachineFacts
from lem.config.schema import BackendConfig, ExperimentConfig

BACKEND_CONFIGS: dict[str, type[BackendConfig]] = {
    "pytorch": PyTorchConfig,
    "vllm": VLLMConfig,
    "tensorrt": TensorRTConfig,
}
#: The package each backend imports at load time.
BACKEND_PACKAGES = {"pytorch": "transformers", "vllm": "vllm", "tensorrt": "tensorrt_llm"}


@dataclass(frozen=True)
class ParamInfo:
    """One parameter: its dotted key, type (as annotated), default and `param` metadata."""

    key: str
    type: str
    default: Any
    description: str
    choices: tuple[Any, ...] | None
    ge: float | None
    gt: float | None
    le: float | None
    maps_to: str | None
    note: str | None
    unsupported: str | None


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def iter_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[Any]]]:
    """Yield (dotted key, field) for every leaf parameter of `cls`, recursing into nested dataclasses.

    The `backend` field of ExperimentConfig is skipped: backends are described per option.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "backend" and cls is ExperimentConfig:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from iter_fields(hint, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def _info(key: str, f: dataclasses.Field[Any]) -> ParamInfo:
    meta = f.metadata
    return ParamInfo(
        key=key,
        type=str(f.type),
        default=_default(f),
        description=meta.get("description", ""),
        choices=meta.get("choices"),
        ge=meta.get("ge"),
        gt=meta.get("gt"),
        le=meta.get("le"),
        maps_to=meta.get("maps_to"),
        note=meta.get("note"),
        unsupported=meta.get("unsupported"),
    )


def get_experiment_params() -> dict[str, ParamInfo]:
    """Every backend-independent parameter, keyed by its Hydra key (e.g. `warmup.target_cv`)."""
    return {key: _info(key, f) for key, f in iter_fields(ExperimentConfig)}


def get_backend_params(backend: str) -> dict[str, ParamInfo]:
    """Every parameter of one backend, keyed `<backend>.<param>` (set on the command line as `backend.<param>`)."""
    try:
        cls = BACKEND_CONFIGS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CONFIGS)}") from None
    return {f"{backend}.{key}": _info(f"{backend}.{key}", f) for key, f in iter_fields(cls) if key != "name"}


@dataclass(frozen=True)
class SkipCondition:
    """A parameter value that cannot be exercised on some machines; `applies(facts)` is True where it cannot."""

    param: str
    value: Any
    reason: str
    applies: Callable[[MachineFacts], bool]


def _min_compute_capability(facts: MachineFacts) -> tuple[int, int] | None:
    return min((g.compute_capability for g in facts.gpus), default=None)


def _below_sm89(facts: MachineFacts) -> bool:
    cc = _min_compute_capability(facts)
    return cc is None or cc < (8, 9)


def _needs_cuda_and(package: str) -> Callable[[MachineFacts], bool]:
    return lambda facts: not facts.gpus or not facts.has(package)


def _needs_gpus(count: int) -> Callable[[MachineFacts], bool]:
    return lambda facts: len(facts.gpus) < count


_FP8 = "needs a GPU of compute capability 8.9 or newer (Ada, Hopper)"


def get_param_skip_conditions() -> dict[str, SkipCondition]:
    """Parameter values that need particular hardware or packages, keyed `<backend>.<param>=<value>`."""
    conditions = [
        SkipCondition("vllm.kv_cache_dtype", "fp8", f"fp8 KV cache {_FP8}", _below_sm89),
        SkipCondition("vllm.kv_cache_dtype", "fp8_e4m3", f"fp8 KV cache {_FP8}", _below_sm89),
        SkipCondition("vllm.quantization", "fp8", f"fp8 weights {_FP8}", _below_sm89),
        SkipCondition("tensorrt.quantization", "fp8", f"fp8 quantization {_FP8}", _below_sm89),
        SkipCondition("tensorrt.kv_cache_quantization", "fp8", f"fp8 KV cache {_FP8}", _below_sm89),
        SkipCondition("tensorrt.gemm_plugin", "fp8", f"the fp8 GEMM plugin {_FP8}", _below_sm89),
        SkipCondition(
            "pytorch.attn_implementation",
            "flash_attention_2",
            "flash_attention_2 needs the flash_attn package and a CUDA GPU",
            _needs_cuda_and("flash_attn"),
        ),
        SkipCondition(
            "pytorch.quantization",
            "bnb_4bit",
            "bitsandbytes 4-bit needs the bitsandbytes package and a CUDA GPU",
            _needs_cuda_and("bitsandbytes"),
        ),
        SkipCondition(
            "pytorch.quantization",
            "bnb_8bit",
            "bitsandbytes 8-bit needs the bitsandbytes package and a CUDA GPU",
            _needs_cuda_and("bitsandbytes"),
        ),
        SkipCondition("vllm.tensor_parallel_size", 2, "tensor parallelism over 2 needs 2 visible GPUs", _needs_gpus(2)),
        SkipCondition("tensorrt.tp_size", 2, "tensor parallelism over 2 needs 2 visible GPUs", _needs_gpus(2)),
        SkipCondition(
            "tensorrt.name",
            "tensorrt",
            "TensorRT-LLM needs an NVIDIA GPU and the tensorrt_llm package",
            _needs_cuda_and("tensorrt_llm"),
        ),
    ]
    return {f"{c.param}={c.value}": c for c in conditions}
