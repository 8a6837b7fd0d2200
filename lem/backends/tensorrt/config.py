"""TensorRTConfig: TensorRT-LLM LLM-API parameters (`backend=tensorrt`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from lem.config.fields import param
from lem.config.schema import BackendConfig

#: lem's quantization names; the translation to TensorRT-LLM's QuantAlgo lives with the backend.
TRT_QUANTIZATIONS = ("none", "fp8", "int8_sq", "int8_weight_only", "int4_awq", "int4_gptq")


@dataclass
class TensorRTConfig(BackendConfig):
    """TensorRT-LLM engine build and runtime settings; `maps_to` names the LLM-API object and field."""

    PARALLEL_KEYS: ClassVar[tuple[str, str] | None] = ("tp_size", "pp_size")

    name: str = param("tensorrt", description="Backend implementation.", choices=("tensorrt",))
    max_batch_size: int = param(
        8, description="Largest batch the engine is built for.", ge=1, maps_to="BuildConfig.max_batch_size"
    )
    max_num_tokens: int | None = param(
        None,
        description="Tokens per engine iteration at most; null = TensorRT-LLM default.",
        ge=1,
        maps_to="BuildConfig.max_num_tokens",
    )
    max_input_len: int | None = param(
        None,
        description="Longest prompt the engine accepts, in tokens as the tokenizer encodes it (special tokens such "
        "as BOS included); null = max_input_tokens + the special tokens the tokenizer adds.",
        ge=1,
        maps_to="BuildConfig.max_input_len",
    )
    max_seq_len: int | None = param(
        None,
        description="Prompt (special tokens included) + output length at most; null = max_input_len's default + "
        "max_output_tokens.",
        ge=1,
        maps_to="BuildConfig.max_seq_len",
    )
    max_beam_width: int = param(
        1, description="Beam width the engine is built for.", ge=1, maps_to="BuildConfig.max_beam_width"
    )
    builder_opt_level: int | None = param(
        None,
        description="TensorRT builder optimisation level (0-5).",
        ge=0,
        le=5,
        unsupported="TensorRT-LLM 1.2.1's BuildConfig has no optimisation-level field",
    )
    strongly_typed: bool = param(
        True, description="Build a strongly typed network.", maps_to="BuildConfig.strongly_typed"
    )
    multiple_profiles: bool = param(
        False,
        description="Build several optimisation profiles for varied shapes.",
        maps_to="PluginConfig.multiple_profiles",
    )
    tp_size: int = param(1, description="Tensor-parallel GPUs.", ge=1, maps_to="LLM.tensor_parallel_size")
    pp_size: int = param(1, description="Pipeline-parallel stages.", ge=1, maps_to="LLM.pipeline_parallel_size")
    quantization: str = param(
        "none",
        description="Weight/activation quantization.",
        choices=TRT_QUANTIZATIONS,
        maps_to="QuantConfig.quant_algo",
    )
    kv_cache_quantization: str | None = param(
        None, description="KV cache quantization.", choices=("fp8", "int8"), maps_to="QuantConfig.kv_cache_quant_algo"
    )
    quantized_checkpoint: bool = param(
        False,
        description="The model folder is already quantized (AWQ/GPTQ); no calibration needed.",
        maps_to="lem rules",
        note="TensorRT-LLM's engine flow takes a pre-quantized checkpoint in NVIDIA ModelOpt format "
        "(hf_quant_config.json in the folder) and reads its quantization from there",
    )
    calib_dataset: str | None = param(
        None,
        description="Calibration dataset (name or local path).",
        maps_to="CalibConfig.calib_dataset",
        note="null = TensorRT-LLM's default, cnn_dailymail from the Hugging Face Hub; TensorRT-LLM calibrates for "
        "fp8, int8_sq, int4_awq, int4_gptq and any KV cache quantization unless the checkpoint is pre-quantized",
    )
    calib_batches: int | None = param(
        None, description="Calibration batches.", ge=1, maps_to="CalibConfig.calib_batches"
    )
    calib_batch_size: int | None = param(
        None, description="Calibration batch size.", ge=1, maps_to="CalibConfig.calib_batch_size"
    )
    calib_max_seq_length: int | None = param(
        None, description="Calibration sequence length.", ge=1, maps_to="CalibConfig.calib_max_seq_length"
    )
    kv_cache_type: str = param(
        "paged", description="KV cache layout.", choices=("paged", "continuous"), maps_to="BuildConfig.kv_cache_type"
    )
    kv_cache_free_gpu_memory_fraction: float | None = param(
        None,
        description="Fraction of free GPU memory for the KV cache.",
        gt=0.0,
        le=1.0,
        maps_to="KvCacheConfig.free_gpu_memory_fraction",
    )
    kv_cache_max_tokens: int | None = param(
        None, description="KV cache capacity in tokens.", ge=1, maps_to="KvCacheConfig.max_tokens"
    )
    enable_kv_cache_reuse: bool = param(
        False,
        description="Reuse KV blocks across requests (prefix reuse).",
        maps_to="KvCacheConfig.enable_block_reuse",
        note="passed even when false, because TensorRT-LLM's own default is true",
    )
    enable_chunked_context: bool = param(
        False, description="Chunk long contexts across iterations.", maps_to="LLM.enable_chunked_prefill"
    )
    use_paged_context_fmha: bool = param(
        True,
        description="Paged context FMHA (needed for chunked context and KV reuse).",
        maps_to="PluginConfig.use_paged_context_fmha",
    )
    gemm_plugin: str | None = param(
        "auto",
        description="GEMM plugin dtype; null = disabled.",
        choices=("auto", "float16", "bfloat16", "float32", "fp8"),
        maps_to="PluginConfig.gemm_plugin",
    )
    gpt_attention_plugin: str | None = param(
        "auto",
        description="Attention plugin dtype; null = disabled.",
        choices=("auto", "float16", "bfloat16", "float32"),
        maps_to="PluginConfig.gpt_attention_plugin",
    )
    batching_type: str = param(
        "inflight",
        description="In-flight (continuous) or static batching.",
        choices=("inflight", "static"),
        maps_to="LLM.batching_type",
    )
    scheduler_policy: str = param(
        "guaranteed_no_evict",
        description="Capacity scheduler policy.",
        choices=("max_utilization", "guaranteed_no_evict", "static_batch"),
        maps_to="SchedulerConfig.capacity_scheduler_policy",
    )
    engine_cache_dir: str | None = param(
        None, description="Where built engines are cached; null = <cache_dir>/trt_engines.", maps_to="lem engine cache"
    )
    force_rebuild: bool = param(
        False, description="Rebuild the engine even if a cached one matches.", maps_to="lem engine cache"
    )
    extra_build_args: dict[str, Any] = param(
        description="Further BuildConfig fields.", default_factory=dict, maps_to="BuildConfig"
    )
    extra_runtime_args: dict[str, Any] = param(
        description="Further LLM() keyword arguments.", default_factory=dict, maps_to="LLM"
    )
