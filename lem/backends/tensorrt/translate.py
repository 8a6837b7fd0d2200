"""Pure translation of an ExperimentConfig (backend=tensorrt) into TensorRT-LLM LLM-API keyword arguments.

The result holds one dict of keyword arguments per API object: LLM, BuildConfig, PluginConfig, KvCacheConfig,
SchedulerConfig, QuantConfig, CalibConfig and SamplingParams. Where a TensorRTConfig field goes is read from its
`maps_to` metadata ("Object.keyword"; a bare "Object" marks an escape hatch merged into that object). Enum values
are `EnumMember` markers, so nothing here imports tensorrt_llm; the backend turns them into the real enums and
nests the objects as `NESTED` says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lem.backends.tensorrt.config import TensorRTConfig
from lem.config.decoder import decoder_values
from lem.config.schema import ExperimentConfig


@dataclass(frozen=True)
class EnumMember:
    """A TensorRT-LLM enum value by name: `enum` is the class (e.g. "QuantAlgo"), `member` the member ("FP8")."""

    enum: str
    member: str


#: Each nested object → (the object it is passed to, the keyword it is passed as). LLM and SamplingParams are roots.
NESTED: dict[str, tuple[str, str]] = {
    "BuildConfig": ("LLM", "build_config"),
    "PluginConfig": ("BuildConfig", "plugin_config"),
    "KvCacheConfig": ("LLM", "kv_cache_config"),
    "SchedulerConfig": ("LLM", "scheduler_config"),
    "QuantConfig": ("LLM", "quant_config"),
    "CalibConfig": ("LLM", "calib_config"),
}
OBJECTS = ("LLM", *NESTED, "SamplingParams")
#: Objects that only shape how an engine is built; TensorRT-LLM reads them from the engine when it loads one.
BUILD_ONLY = ("BuildConfig", "PluginConfig", "QuantConfig", "CalibConfig")
#: Objects whose None is a value of its own (a plugin set to None is disabled), so None is passed on. Elsewhere a
#: null field is left out and TensorRT-LLM's default applies.
_NONE_IS_A_VALUE = ("PluginConfig",)

#: lem's choice → TensorRT-LLM enum member, per field; a None member means nothing is passed.
ENUM_VALUES: dict[str, tuple[str, dict[str, str | None]]] = {
    "quantization": (
        "QuantAlgo",
        {
            "none": None,
            "fp8": "FP8",
            "int8_sq": "W8A8_SQ_PER_CHANNEL",
            "int8_weight_only": "W8A16",
            "int4_awq": "W4A16_AWQ",
            "int4_gptq": "W4A16_GPTQ",
        },
    ),
    "kv_cache_quantization": ("QuantAlgo", {"fp8": "FP8", "int8": "INT8"}),
    "kv_cache_type": ("KVCacheType", {"paged": "PAGED", "continuous": "CONTINUOUS"}),
    "batching_type": ("BatchingType", {"inflight": "INFLIGHT", "static": "STATIC"}),
    "scheduler_policy": (
        "CapacitySchedulerPolicy",
        {
            "max_utilization": "MAX_UTILIZATION",
            "guaranteed_no_evict": "GUARANTEED_NO_EVICT",
            "static_batch": "STATIC_BATCH",
        },
    ),
}

#: Fields whose null means a length taken from the workload, in tokens, as their descriptions say: (config, special
#: tokens the tokenizer adds to a prompt) → length. lem's prompts are at most max_input_tokens long without special
#: tokens; TensorRT-LLM counts the prompt as the tokenizer encodes it, BOS included.
_WORKLOAD_DEFAULTS: dict[str, Callable[[ExperimentConfig, int], int]] = {
    "max_input_len": lambda config, special: config.max_input_tokens + special,
    "max_seq_len": lambda config, special: config.max_input_tokens + special + config.max_output_tokens,
}


def field_targets() -> dict[str, tuple[str, str]]:
    """TensorRTConfig field → (API object, keyword), for every field whose `maps_to` is "Object.keyword"."""
    targets = {}
    for f in dataclasses.fields(TensorRTConfig):
        obj, dot, keyword = (f.metadata.get("maps_to") or "").partition(".")
        if dot and obj in OBJECTS and not f.metadata.get("unsupported"):
            targets[f.name] = (obj, keyword)
    return targets


def extra_targets() -> dict[str, str]:
    """Escape-hatch field → the API object its keys are merged into (fields whose `maps_to` is a bare object)."""
    fields = dataclasses.fields(TensorRTConfig)
    return {f.name: f.metadata["maps_to"] for f in fields if f.metadata.get("maps_to") in OBJECTS}


def _value(config: ExperimentConfig, field_name: str, special_tokens: int) -> Any:
    value = getattr(config.backend, field_name)
    if value is None and field_name in _WORKLOAD_DEFAULTS:
        return _WORKLOAD_DEFAULTS[field_name](config, special_tokens)
    if value is not None and field_name in ENUM_VALUES:
        enum, members = ENUM_VALUES[field_name]
        member = members[value]
        return None if member is None else EnumMember(enum, member)
    return value


def sampling_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """SamplingParams keyword arguments: token limits, the resolved decoder (greedy = top_k 1), fixed length.

    Fixed length sets min_tokens = max_tokens and ignore_eos, so every request emits exactly max_output_tokens.
    Per-request timings are requested (return_perf_metrics); text is not decoded (detokenize=False), because lem
    counts token ids and decoding is work the other backends do not do in the measured window.
    """
    kwargs: dict[str, Any] = {
        "max_tokens": config.max_output_tokens,
        "seed": config.random_seed,
        "return_perf_metrics": True,
        "detokenize": False,
    }
    if config.fixed_length:
        kwargs.update(min_tokens=config.max_output_tokens, ignore_eos=True)
    sample, values = decoder_values(config)
    kwargs.update(values)
    if not sample:
        kwargs["top_k"] = 1
    return kwargs


def translate(config: ExperimentConfig, model_path: str, special_tokens: int) -> dict[str, dict[str, Any]]:
    """Keyword arguments of every API object, keyed by object name (see `OBJECTS`); nested objects are not filled in.

    LLM gets the model and its tokenizer (`model_path`), dtype = fp_precision (resolved: never "auto") and
    return_perf_metrics; every mapped field follows, then the escape hatches (extra_build_args → BuildConfig,
    extra_runtime_args → LLM), last. `special_tokens` is how many the tokenizer adds to a prompt (BOS): the lengths
    taken from the workload count them.
    """
    backend = config.backend
    assert isinstance(backend, TensorRTConfig)
    kwargs: dict[str, dict[str, Any]] = {name: {} for name in OBJECTS}
    kwargs["LLM"].update(model=model_path, tokenizer=model_path, dtype=config.fp_precision, return_perf_metrics=True)
    for field_name, (obj, keyword) in field_targets().items():
        value = _value(config, field_name, special_tokens)
        if value is not None or obj in _NONE_IS_A_VALUE:
            kwargs[obj][keyword] = value
    for field_name, obj in extra_targets().items():
        kwargs[obj].update(getattr(backend, field_name))
    kwargs["SamplingParams"] = sampling_kwargs(config)
    return kwargs


def engine_arguments(config: ExperimentConfig, model_path: str) -> dict[str, Any]:
    """What the engine key holds that the config decides: every API object's keyword arguments but SamplingParams',
    with the lengths taken from the workload counted without special tokens (the backend's key adds the count the
    tokenizer adds, and the GPUs)."""
    kwargs = translate(config, model_path, special_tokens=0)
    return {"api": {name: args for name, args in kwargs.items() if name != "SamplingParams"}}
