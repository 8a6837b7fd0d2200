"""VLLMConfig: the vLLM offline-engine parameters (`backend=vllm`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from lem.config.fields import param
from lem.config.schema import BackendConfig

_ENGINE = "EngineArgs"
_REMOVED = "vLLM 0.32's EngineArgs (V1 engine) has no such argument"


def _engine(name: str) -> str:
    return f"{_ENGINE}.{name}"


@dataclass
class VLLMConfig(BackendConfig):
    """vLLM `LLM(...)` engine arguments; null means the engine's own default unless stated."""

    PARALLEL_KEYS: ClassVar[tuple[str, str] | None] = ("tensor_parallel_size", "pipeline_parallel_size")

    name: str = param("vllm", description="Backend implementation.", choices=("vllm",))
    max_num_seqs: int | None = param(
        None, description="Sequences scheduled per engine step at most.", ge=1, maps_to=_engine("max_num_seqs")
    )
    max_num_batched_tokens: int | None = param(
        None, description="Tokens scheduled per engine step at most.", ge=1, maps_to=_engine("max_num_batched_tokens")
    )
    max_model_len: int | None = param(
        None,
        description="Context length; null = the model's (capped by lem at 1024 on CPU).",
        ge=1,
        maps_to=_engine("max_model_len"),
    )
    gpu_memory_utilization: float | None = param(
        None,
        description="Fraction of device memory for weights and KV cache; null = 0.9 on GPU, 0.3 on CPU "
        "(sizes the CPU KV cache against NUMA node 0).",
        gt=0.0,
        le=1.0,
        maps_to=_engine("gpu_memory_utilization"),
    )
    kv_cache_memory_bytes: int | None = param(
        None,
        description="KV cache size in bytes (overrides gpu_memory_utilization for the cache).",
        ge=1,
        maps_to=_engine("kv_cache_memory_bytes"),
    )
    swap_space: float | None = param(None, description="CPU swap space per GPU, GiB.", ge=0.0, unsupported=_REMOVED)
    cpu_offload_gb: float | None = param(
        None, description="Weights offloaded to CPU memory, GiB.", ge=0.0, maps_to=_engine("cpu_offload_gb")
    )
    tensor_parallel_size: int = param(
        1, description="Tensor-parallel GPUs.", ge=1, maps_to=_engine("tensor_parallel_size")
    )
    pipeline_parallel_size: int = param(
        1, description="Pipeline-parallel stages.", ge=1, maps_to=_engine("pipeline_parallel_size")
    )
    data_parallel_size: int | None = param(
        None, description="Data-parallel engine replicas.", ge=1, maps_to=_engine("data_parallel_size")
    )
    distributed_executor_backend: str | None = param(
        None,
        description="Worker executor.",
        choices=("mp", "ray", "uni", "external_launcher"),
        maps_to=_engine("distributed_executor_backend"),
    )
    enable_prefix_caching: bool | None = param(
        None, description="Reuse KV blocks of shared prompt prefixes.", maps_to=_engine("enable_prefix_caching")
    )
    prefix_caching_hash_algo: str | None = param(
        None,
        description="Hash for prefix-cache blocks.",
        choices=("sha256", "sha256_cbor", "xxhash", "xxhash_cbor"),
        maps_to=_engine("prefix_caching_hash_algo"),
    )
    enable_chunked_prefill: bool | None = param(
        None, description="Split long prefills across steps.", maps_to=_engine("enable_chunked_prefill")
    )
    long_prefill_token_threshold: int | None = param(
        None,
        description="Chunked prefill: a prompt longer than this is a long prefill.",
        ge=0,
        maps_to=_engine("long_prefill_token_threshold"),
    )
    enforce_eager: bool = param(
        False, description="Disable CUDA graphs (always on for CPU runs).", maps_to=_engine("enforce_eager")
    )
    kv_cache_dtype: str = param(
        "auto",
        description="KV cache data type.",
        choices=("auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"),
        maps_to=_engine("kv_cache_dtype"),
    )
    block_size: int | None = param(
        None, description="KV cache block size, tokens.", choices=(1, 8, 16, 32, 64, 128), maps_to=_engine("block_size")
    )
    dtype: str | None = param(
        None,
        description="Model dtype; null = fp_precision.",
        choices=("auto", "float16", "bfloat16", "float32"),
        maps_to=_engine("dtype"),
    )
    tokenizer_mode: str = param(
        "auto",
        description="Tokenizer implementation.",
        choices=("auto", "hf", "mistral"),
        maps_to=_engine("tokenizer_mode"),
    )
    trust_remote_code: bool = param(
        False, description="Allow model code from the model folder.", maps_to=_engine("trust_remote_code")
    )
    num_scheduler_steps: int | None = param(
        None, description="Multi-step scheduling steps.", ge=1, unsupported=_REMOVED
    )
    quantization: str | None = param(
        None,
        description="Weight quantization method.",
        choices=(
            "awq",
            "awq_marlin",
            "gptq",
            "gptq_marlin",
            "fp8",
            "compressed-tensors",
            "modelopt",
            "experts_int8",
            "torchao",
        ),
        maps_to=_engine("quantization"),
    )
    load_format: str = param(
        "auto",
        description="Weight file format.",
        choices=("auto", "safetensors", "pt", "npcache", "dummy"),
        maps_to=_engine("load_format"),
    )
    seed: int | None = param(None, description="Engine seed; null = random_seed.", maps_to=_engine("seed"))
    speculative_config: dict[str, Any] | None = param(
        None,
        description="Speculative decoding settings (method, model, num_speculative_tokens, ...).",
        maps_to=_engine("speculative_config"),
    )
    compilation_config: dict[str, Any] | None = param(
        None,
        description="torch.compile / CUDA graph settings (mode, cudagraph_mode, ...).",
        maps_to=_engine("compilation_config"),
    )
    cudagraph_capture_sizes: list[int] | None = param(
        None, description="Batch sizes captured as CUDA graphs.", maps_to=_engine("cudagraph_capture_sizes")
    )
    max_cudagraph_capture_size: int | None = param(
        None, description="Largest batch captured as a CUDA graph.", ge=1, maps_to=_engine("max_cudagraph_capture_size")
    )
    async_scheduling: bool | None = param(
        None, description="Overlap scheduling with model execution.", maps_to=_engine("async_scheduling")
    )
    scheduling_policy: str = param(
        "fcfs",
        description="Request scheduling policy.",
        choices=("fcfs", "priority"),
        maps_to=_engine("scheduling_policy"),
    )
    disable_custom_all_reduce: bool = param(
        False, description="Use NCCL all-reduce instead of vLLM's kernel.", maps_to=_engine("disable_custom_all_reduce")
    )
    disable_sliding_window: bool = param(
        False, description="Disable sliding-window attention.", maps_to=_engine("disable_sliding_window")
    )
    enable_expert_parallel: bool = param(
        False, description="Expert parallelism for MoE layers.", maps_to=_engine("enable_expert_parallel")
    )
    disable_log_stats: bool = param(
        True, description="Silence vLLM's periodic stats logging.", maps_to=_engine("disable_log_stats")
    )
    revision: str | None = param(
        None,
        description="Hub revision (branch, tag or commit) fetched in the prepare phase; null = main.",
        maps_to=_engine("revision"),
    )
    extra: dict[str, Any] = param(
        description="Further EngineArgs keyword arguments.", default_factory=dict, maps_to=_ENGINE
    )
