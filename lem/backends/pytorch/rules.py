"""Validation rules and hardware requirements of the PyTorch backend."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from functools import cache

from lem.backends.checkpoint import checkpoint_config
from lem.backends.escape_hatches import Accepted, accepted_keywords
from lem.backends.pytorch.config import PyTorchConfig
from lem.config.decoder import resolved_decoder
from lem.config.findings import Finding
from lem.config.machine import MachineFacts, SkipCondition, needs_cuda_and
from lem.config.schema import ExperimentConfig

#: generate() sampling arguments of transformers that only act when sampling.
SAMPLING_ONLY = ("typical_p", "epsilon_cutoff", "eta_cutoff")


def sampling_while_greedy(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """transformers' own sampling fields set while decoding is greedy."""
    backend = config.backend
    assert isinstance(backend, PyTorchConfig)
    if resolved_decoder(config)["do_sample"]:
        return
    for key in SAMPLING_ONLY:
        if getattr(backend, key) is not None:
            yield Finding(
                "SAMPLING_WHILE_GREEDY",
                "warning",
                f"backend.{key}",
                "is ignored because decoding is greedy; set decoder.do_sample=true or a sampling "
                "decoder.preset (standard, creative, factual)",
            )


@cache
def _generate_keywords() -> Accepted:
    import transformers
    from transformers import GenerationConfig
    from transformers.generation.utils import GenerationMixin

    names = {name for name in vars(GenerationConfig()) if not name.startswith("_")}
    where = f"the installed transformers {transformers.__version__}'s generate() and GenerationConfig"
    return Accepted(frozenset(names) | accepted_keywords(GenerationMixin.generate), where)


def generate_keywords(config: ExperimentConfig) -> Accepted:
    """What backend.extra may hold: generate()'s named parameters and GenerationConfig's attributes."""
    return _generate_keywords()


@cache
def _load_keywords(model_type: str | None) -> Accepted:
    import transformers
    from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

    load = PreTrainedModel.from_pretrained
    # from_pretrained takes most of its options through **kwargs and pops them by name; the rest set config attributes
    popped = re.findall(r"kwargs\.pop\(\s*[\"'](\w+)[\"']", inspect.getsource(load))
    names = accepted_keywords(load) | set(popped) | set(PretrainedConfig().to_dict())
    where = f"the installed transformers {transformers.__version__}'s from_pretrained()"
    try:
        config_names = set(AutoConfig.for_model(model_type).to_dict()) if model_type else None
    except ValueError:  # a model type this transformers does not know (model code from the checkpoint)
        config_names = None
    if config_names is None:
        caveat = "it may be an attribute of the model's config, which lem could not read before the model is prepared"
        return Accepted(frozenset(names), where, caveat)
    return Accepted(frozenset(names | config_names), f"{where} and the {model_type} config")


def load_keywords(config: ExperimentConfig) -> Accepted:
    """What backend.extra_load may hold: from_pretrained()'s arguments, and attributes of the checkpoint's config."""
    return _load_keywords(checkpoint_config(config.model, config.cache_dir).get("model_type"))


RULES = (sampling_while_greedy,)
KEYWORD_READERS = {"extra": generate_keywords, "extra_load": load_keywords}
SKIP_CONDITIONS = (
    SkipCondition(
        "pytorch.attn_implementation",
        "flash_attention_2",
        "flash_attention_2 needs the flash_attn package and a CUDA GPU",
        needs_cuda_and("flash_attn"),
    ),
    SkipCondition(
        "pytorch.quantization",
        "bnb_4bit",
        "bitsandbytes 4-bit needs the bitsandbytes package and a CUDA GPU",
        needs_cuda_and("bitsandbytes"),
    ),
    SkipCondition(
        "pytorch.quantization",
        "bnb_8bit",
        "bitsandbytes 8-bit needs the bitsandbytes package and a CUDA GPU",
        needs_cuda_and("bitsandbytes"),
    ),
)
