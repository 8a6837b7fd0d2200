"""Validation rules and hardware requirements of the vLLM backend."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from lem.backends.escape_hatches import Accepted, accepted_keywords
from lem.backends.vllm.config import VLLMConfig
from lem.config.findings import Finding, context_too_long
from lem.config.machine import FP8_REASON, MachineFacts, SkipCondition, below_sm89, needs_gpus
from lem.config.schema import ExperimentConfig


def dtype_differs(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """backend.dtype set to something other than fp_precision."""
    backend = config.backend
    assert isinstance(backend, VLLMConfig)
    if backend.dtype not in (None, "auto", config.fp_precision):
        yield Finding(
            "DTYPE_DIFFERS",
            "warning",
            "backend.dtype",
            f"{backend.dtype!r} overrides fp_precision={config.fp_precision!r} for vLLM; "
            f"drop backend.dtype to use fp_precision",
        )


def context_length(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """max_model_len below the workload's input + output tokens."""
    backend = config.backend
    assert isinstance(backend, VLLMConfig)
    needed = config.max_input_tokens + config.max_output_tokens
    yield from context_too_long("backend.max_model_len", backend.max_model_len, needed, config)


@cache
def _engine_args() -> Accepted:
    import vllm  # about 5 s: only for a config that fills backend.extra
    from vllm.engine.arg_utils import EngineArgs

    return Accepted(accepted_keywords(EngineArgs), f"the installed vLLM {vllm.__version__}'s EngineArgs")


def engine_keywords(config: ExperimentConfig) -> Accepted:
    """What backend.extra may hold: the installed EngineArgs' fields."""
    return _engine_args()


RULES = (dtype_differs, context_length)
KEYWORD_READERS = {"extra": engine_keywords}
SKIP_CONDITIONS = (
    SkipCondition("vllm.kv_cache_dtype", "fp8", f"fp8 KV cache {FP8_REASON}", below_sm89),
    SkipCondition("vllm.kv_cache_dtype", "fp8_e4m3", f"fp8 KV cache {FP8_REASON}", below_sm89),
    SkipCondition("vllm.quantization", "fp8", f"fp8 weights {FP8_REASON}", below_sm89),
    SkipCondition("vllm.tensor_parallel_size", 2, "tensor parallelism over 2 needs 2 visible GPUs", needs_gpus(2)),
)
