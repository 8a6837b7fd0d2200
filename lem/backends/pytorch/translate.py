"""Pure translation of an ExperimentConfig (backend=pytorch) into what the PyTorch backend loads the model with.

Nothing here imports torch or transformers, so a dry run can compute it: dtypes are lem's names ("bfloat16") and
quantization is BitsAndBytesConfig's keyword arguments; the backend turns them into torch objects.
"""

from __future__ import annotations

from typing import Any

from lem.backends.pytorch.config import PyTorchConfig
from lem.config.schema import ExperimentConfig


def quantization_arguments(backend: PyTorchConfig, fp_precision: str) -> dict[str, Any] | None:
    """BitsAndBytesConfig keyword arguments (the 4-bit compute dtype by name, null = fp_precision); None without
    quantization."""
    if backend.quantization is None:
        return None
    if backend.quantization == "bnb_8bit":
        return {"load_in_8bit": True}
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": backend.bnb_4bit_quant_type,
        "bnb_4bit_compute_dtype": backend.bnb_4bit_compute_dtype or fp_precision,
    }


def from_pretrained_arguments(config: ExperimentConfig) -> dict[str, Any]:
    """from_pretrained keyword arguments: dtype = fp_precision by name (resolved by the backend: never "auto"), the
    loader fields that are set, quantization_config as BitsAndBytesConfig's arguments, then `extra_load`."""
    backend = config.backend
    assert isinstance(backend, PyTorchConfig)
    kwargs: dict[str, Any] = {
        "dtype": config.fp_precision,
        "attn_implementation": backend.attn_implementation,
        "low_cpu_mem_usage": backend.low_cpu_mem_usage,
        "trust_remote_code": backend.trust_remote_code,
    }
    if backend.revision is not None:
        kwargs["revision"] = backend.revision
    if backend.device_map is not None:
        kwargs["device_map"] = backend.device_map
    quantization = quantization_arguments(backend, config.fp_precision)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    kwargs.update(backend.extra_load)
    return kwargs


def engine_arguments(config: ExperimentConfig, model_path: str) -> dict[str, Any]:
    """What the engine key holds that the config decides: from_pretrained's path and arguments, and what load()
    applies around them (torch threads, torch.compile, the assistant model). The backend adds the device."""
    backend = config.backend
    assert isinstance(backend, PyTorchConfig)
    return {
        "from_pretrained": {"pretrained_model_name_or_path": model_path, **from_pretrained_arguments(config)},
        "torch_threads": backend.torch_threads,
        "torch_compile": [backend.torch_compile, backend.torch_compile_backend],
        "assistant_model": backend.assistant_model,
    }
