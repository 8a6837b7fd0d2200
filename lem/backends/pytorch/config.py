"""PyTorchConfig: the transformers backend's parameters (`backend=pytorch`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lem.config.fields import param
from lem.config.schema import BackendConfig

_LOAD = "from_pretrained"
_GEN = "generate"


@dataclass
class PyTorchConfig(BackendConfig):
    """transformers AutoModelForCausalLM + generate; `maps_to` names the call each field is passed to."""

    name: str = param("pytorch", description="Backend implementation.", choices=("pytorch",))
    batch_size: int = param(
        8, description="Prompts per generate call (dynamic: the upper bound).", ge=1, maps_to="lem batching"
    )
    batching_strategy: str = param(
        "static",
        description="'static': fixed batches in prompt order; 'sorted_static': sorted by length first; "
        "'dynamic': batches filled up to max_tokens_per_batch; 'sorted_dynamic': both.",
        choices=("static", "dynamic", "sorted_static", "sorted_dynamic"),
        maps_to="lem batching",
    )
    max_tokens_per_batch: int | None = param(
        None,
        description="Dynamic batching: padded input + output tokens per batch at most; null = no token cap.",
        ge=1,
        maps_to="lem batching",
    )
    attn_implementation: str = param(
        "sdpa", description="Attention kernel.", choices=("sdpa", "eager", "flash_attention_2"), maps_to=_LOAD
    )
    torch_compile: str = param(
        "off",
        description="torch.compile mode applied to the model; 'off' = eager.",
        choices=("off", "default", "reduce-overhead", "max-autotune"),
        maps_to="torch.compile",
    )
    torch_compile_backend: str = param("inductor", description="torch.compile backend.", maps_to="torch.compile")
    use_cache: bool = param(True, description="Use the KV cache during generation.", maps_to=_GEN)
    low_cpu_mem_usage: bool = param(True, description="Load weights without a full extra CPU copy.", maps_to=_LOAD)
    cache_implementation: str | None = param(
        None,
        description="KV cache class; null = the model's default (dynamic).",
        choices=("dynamic", "static", "offloaded", "offloaded_static", "sliding_window", "hybrid", "quantized"),
        maps_to=_GEN,
    )
    device_map: str | None = param(
        None,
        description="Accelerate device map ('auto', 'balanced', ...); "
        "null = the whole model on the first device lem uses.",
        maps_to=_LOAD,
    )
    quantization: str | None = param(
        None,
        description="bitsandbytes quantization of the weights.",
        choices=("bnb_4bit", "bnb_8bit"),
        maps_to="BitsAndBytesConfig",
    )
    bnb_4bit_quant_type: str = param(
        "nf4", description="bitsandbytes 4-bit data type.", choices=("nf4", "fp4"), maps_to="BitsAndBytesConfig"
    )
    bnb_4bit_compute_dtype: str | None = param(
        None,
        description="bitsandbytes 4-bit compute dtype; null = fp_precision.",
        choices=("float32", "float16", "bfloat16"),
        maps_to="BitsAndBytesConfig",
    )
    num_beams: int = param(1, description="Beam search width; 1 = no beam search.", ge=1, maps_to=_GEN)
    num_beam_groups: int | None = param(
        None,
        description="Diverse beam search groups.",
        ge=1,
        maps_to=_GEN,
        note="transformers 5 moved group beam search to a hub custom_generate recipe; values > 1 need that recipe.",
    )
    diversity_penalty: float | None = param(None, description="Diverse beam search penalty.", ge=0.0, maps_to=_GEN)
    length_penalty: float | None = param(None, description="Beam search length penalty exponent.", maps_to=_GEN)
    early_stopping: bool | None = param(None, description="Beam search stopping rule.", maps_to=_GEN)
    guidance_scale: float | None = param(None, description="Classifier-free guidance scale.", ge=1.0, maps_to=_GEN)
    low_memory: bool | None = param(
        None, description="Sequential beam/contrastive search to save memory.", maps_to=_GEN
    )
    typical_p: float | None = param(None, description="Locally typical sampling mass.", gt=0.0, le=1.0, maps_to=_GEN)
    epsilon_cutoff: float | None = param(None, description="Epsilon sampling cutoff.", ge=0.0, le=1.0, maps_to=_GEN)
    eta_cutoff: float | None = param(None, description="Eta sampling cutoff.", ge=0.0, le=1.0, maps_to=_GEN)
    no_repeat_ngram_size: int | None = param(
        None, description="Forbid repeating n-grams of this size.", ge=1, maps_to=_GEN
    )
    prompt_lookup_num_tokens: int | None = param(
        None, description="Prompt-lookup speculative decoding tokens.", ge=1, maps_to=_GEN
    )
    assistant_model: str | None = param(None, description="Draft model id/path for assisted generation.", maps_to=_GEN)
    num_assistant_tokens: int | None = param(None, description="Draft tokens per assisted step.", ge=1, maps_to=_GEN)
    pad_to_multiple_of: int | None = param(
        None, description="Pad batch inputs to a multiple of this length.", ge=1, maps_to="tokenizer"
    )
    trust_remote_code: bool = param(False, description="Allow model code from the model folder.", maps_to=_LOAD)
    revision: str | None = param(
        None,
        description="Hub revision (branch, tag or commit) fetched in the prepare phase; null = main.",
        maps_to=_LOAD,
    )
    torch_threads: int | None = param(
        None, description="torch intra-op threads; null = torch's default.", ge=1, maps_to="torch.set_num_threads"
    )
    extra: dict[str, Any] = param(
        description="Further generate() keyword arguments.", default_factory=dict, maps_to=_GEN
    )
    extra_load: dict[str, Any] = param(
        description="Further from_pretrained() keyword arguments.", default_factory=dict, maps_to=_LOAD
    )
