"""Validation rules and hardware requirements of the TensorRT-LLM backend."""

from __future__ import annotations

from collections.abc import Iterable

from lem.backends.escape_hatches import Accepted, accepted_keywords
from lem.backends.tensorrt.api import import_api, llm_keywords
from lem.backends.tensorrt.config import TensorRTConfig
from lem.config.findings import Finding, context_too_long
from lem.config.machine import FP8_REASON, MachineFacts, SkipCondition, below_sm89, needs_cuda_and, needs_gpus
from lem.config.schema import ExperimentConfig


def no_float32(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """lem's TensorRT-LLM backend builds 16-bit engines only (fp_precision=auto resolves to one)."""
    if config.fp_precision == "float32":
        yield Finding(
            "TRT_FLOAT32",
            "error",
            "fp_precision",
            "'float32' is not supported by lem's TensorRT-LLM backend; use fp_precision=float16 or bfloat16",
        )


def context_length(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """max_seq_len and max_input_len below what the workload needs."""
    backend = config.backend
    assert isinstance(backend, TensorRTConfig)
    needed = config.max_input_tokens + config.max_output_tokens
    yield from context_too_long("backend.max_seq_len", backend.max_seq_len, needed, config)
    yield from context_too_long("backend.max_input_len", backend.max_input_len, config.max_input_tokens, config)


def engine_follows_workload(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """max_seq_len null: the engine is built for this job's input + output tokens, so every length is an engine."""
    backend = config.backend
    assert isinstance(backend, TensorRTConfig)
    if backend.max_seq_len is None:
        yield Finding(
            "ENGINE_FOLLOWS_WORKLOAD",
            "warning",
            "backend.max_seq_len",
            f"null: the engine is built for max_input_tokens + max_output_tokens "
            f"({config.max_input_tokens + config.max_output_tokens} tokens, plus special tokens), so a sweep over "
            f"max_output_tokens builds and loads an engine per value; set backend.max_seq_len to at least the largest "
            f"input + output to build one",
        )


def quantization_needs_calibration(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """int4 AWQ/GPTQ without calibration data or a pre-quantized checkpoint."""
    backend = config.backend
    assert isinstance(backend, TensorRTConfig)
    if backend.quantization not in ("int4_awq", "int4_gptq"):
        return
    if backend.calib_dataset is None and not backend.quantized_checkpoint:
        yield Finding(
            "QUANT_NEEDS_CALIBRATION",
            "error",
            "backend.quantization",
            f"{backend.quantization!r} needs calibration data or a pre-quantized checkpoint; set "
            f"backend.calib_dataset=... or backend.quantized_checkpoint=true",
        )


def build_keywords(config: ExperimentConfig) -> Accepted:
    """What extra_build_args may hold: the installed BuildConfig's fields."""
    api, version = import_api()
    return Accepted(accepted_keywords(api["BuildConfig"]), f"the installed TensorRT-LLM {version}'s BuildConfig")


def runtime_keywords(config: ExperimentConfig) -> Accepted:
    """What extra_runtime_args may hold: the installed LLM's keyword arguments (TensorRT-engine flow)."""
    api, version = import_api()
    return Accepted(llm_keywords(api["LLM"]), f"the installed TensorRT-LLM {version}'s LLM()")


RULES = (no_float32, context_length, engine_follows_workload, quantization_needs_calibration)
KEYWORD_READERS = {"extra_build_args": build_keywords, "extra_runtime_args": runtime_keywords}
SKIP_CONDITIONS = (
    SkipCondition("tensorrt.quantization", "fp8", f"fp8 quantization {FP8_REASON}", below_sm89),
    SkipCondition("tensorrt.kv_cache_quantization", "fp8", f"fp8 KV cache {FP8_REASON}", below_sm89),
    SkipCondition("tensorrt.gemm_plugin", "fp8", f"the fp8 GEMM plugin {FP8_REASON}", below_sm89),
    SkipCondition("tensorrt.tp_size", 2, "tensor parallelism over 2 needs 2 visible GPUs", needs_gpus(2)),
    SkipCondition(
        "tensorrt.name",
        "tensorrt",
        "TensorRT-LLM needs an NVIDIA GPU and the tensorrt_llm package",
        needs_cuda_and("tensorrt_llm"),
    ),
)
