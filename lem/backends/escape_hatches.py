"""Escape hatches: the backend fields typed `dict[str, Any]`, whose keys go straight to an engine call.

lem cannot list their keys in advance, so it reads what the engine accepts from the installed package: each backend's
spec names, per hatch, a `KeywordReader` (it imports the engine, so validation calls it only for a hatch the user
filled). `accepted_keywords` is the one way lem reads the keywords of a class or callable; the TensorRT-LLM contract
check (scripts/check_trtllm_contract.py) uses it too.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lem.config.schema import BackendConfig, ExperimentConfig

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class Accepted:
    """The keywords an engine call accepts, read from the installed package; `where` names the call and version.

    `caveat`, where set, says why a key not in `names` may still be valid (the list is known to be incomplete): such
    a key is then a warning, not an error.
    """

    names: frozenset[str]
    where: str
    caveat: str | None = None


#: Reads the keywords one escape hatch's target accepts (imports the engine); raises where the engine cannot import.
KeywordReader = Callable[["ExperimentConfig"], Accepted]


def escape_hatch_fields(config_class: type[BackendConfig]) -> dict[str, str]:
    """Escape-hatch field → its `maps_to` (the call or object its keys are passed to), for fields typed dict[str, Any]
    (an optional dict such as vLLM's speculative_config is a typed parameter with its own structure, not a hatch)."""
    hints = typing.get_type_hints(config_class)
    return {
        f.name: f.metadata["maps_to"]
        for f in dataclasses.fields(config_class)
        if typing.get_origin(hints[f.name]) is dict
    }


def typed_keywords(config_class: type[BackendConfig], target: str) -> dict[str, str]:
    """Keyword of `target` → the typed field that sets it: fields whose `maps_to` is "target.keyword", or `target`
    itself (the keyword is then the field's name); escape hatches and unsupported fields excluded."""
    hatches = escape_hatch_fields(config_class)
    typed = {}
    for f in dataclasses.fields(config_class):
        maps_to = f.metadata.get("maps_to") or ""
        if f.name in hatches or f.metadata.get("unsupported"):
            continue
        if maps_to == target:
            typed[f.name] = f.name
        elif maps_to.startswith(target + "."):
            typed[maps_to.removeprefix(target + ".")] = f.name
    return typed


def accepts_any_keyword(target: Any) -> bool:
    """Whether `target`'s signature ends in **kwargs (its named parameters are then not the whole story)."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(target).parameters.values())


def accepted_keywords(target: Any) -> frozenset[str]:
    """The keyword arguments a class or callable declares: a pydantic model's fields (and their aliases), a
    dataclass's init fields, else its signature's named parameters (not self, *args or **kwargs)."""
    model_fields = getattr(target, "model_fields", None)
    if isinstance(model_fields, dict):
        aliases = {info.alias for info in model_fields.values() if getattr(info, "alias", None)}
        return frozenset(model_fields) | aliases
    if dataclasses.is_dataclass(target):
        return frozenset(f.name for f in dataclasses.fields(target) if f.init)
    parameters = inspect.signature(target).parameters.values()
    return frozenset(p.name for p in parameters if p.kind in _NAMED and p.name not in ("self", "cls"))
