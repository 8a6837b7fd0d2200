"""Introspection derived from the config dataclasses: parameter tables and skip conditions.

Nothing here is a hand-kept list of parameters: every entry comes from a dataclass field and its `param` metadata.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lem.backends.registry import BACKENDS
from lem.config.machine import SkipCondition
from lem.config.schema import ExperimentConfig


@dataclass(frozen=True)
class ParamInfo:
    """One parameter: its dotted key, type (as annotated), default and `param` metadata."""

    key: str
    type: str
    default: Any
    description: str
    choices: tuple[Any, ...] | None
    ge: float | None
    gt: float | None
    le: float | None
    maps_to: str | None
    note: str | None
    unsupported: str | None


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def iter_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[Any]]]:
    """Yield (dotted key, field) for every leaf parameter of `cls`, recursing into nested dataclasses.

    The `backend` field of ExperimentConfig is skipped: backends are described per option.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "backend" and cls is ExperimentConfig:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from iter_fields(hint, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def _info(key: str, f: dataclasses.Field[Any]) -> ParamInfo:
    meta = f.metadata
    return ParamInfo(
        key=key,
        type=str(f.type),
        default=_default(f),
        description=meta.get("description", ""),
        choices=meta.get("choices"),
        ge=meta.get("ge"),
        gt=meta.get("gt"),
        le=meta.get("le"),
        maps_to=meta.get("maps_to"),
        note=meta.get("note"),
        unsupported=meta.get("unsupported"),
    )


def get_experiment_params() -> dict[str, ParamInfo]:
    """Every backend-independent parameter, keyed by its Hydra key (e.g. `warmup.target_cv`)."""
    return {key: _info(key, f) for key, f in iter_fields(ExperimentConfig)}


def get_option_params(group: str, cls: type) -> dict[str, ParamInfo]:
    """Every parameter of one option of a config group (its class `cls`), keyed `<group>.<param>`."""
    return {f"{group}.{key}": _info(f"{group}.{key}", f) for key, f in iter_fields(cls) if key != "name"}


def get_backend_params(backend: str) -> dict[str, ParamInfo]:
    """Every parameter of one backend, keyed `<backend>.<param>` (set on the command line as `backend.<param>`)."""
    try:
        cls = BACKENDS[backend].config
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}") from None
    return get_option_params(backend, cls)


def get_param_skip_conditions() -> dict[str, SkipCondition]:
    """Parameter values that need particular hardware or packages, keyed `<backend>.<param>=<value>`."""
    return {f"{c.param}={c.value}": c for spec in BACKENDS.values() for c in spec.skip_conditions}
