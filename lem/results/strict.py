"""JSON and the result dataclasses, strictly: `from_dict` rebuilds a dataclass from parsed JSON, checking every key and
type (unknown or missing keys fail, naming the path); `json_safe` writes what JSON cannot hold (inf, nan) as text."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float as a string ("inf", "-inf", "nan"): JSON has no Infinity or NaN, and a
    config may hold one (scenario.request_rate=inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _build(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) not in options:
                raise ValueError(f"{path}: null is not allowed")
            return None
        real = [option for option in options if option is not type(None)]
        if len(real) == 1:  # Optional[X]: X's own error names the exact key
            return _build(real[0], value, path)
        for option in real:
            try:
                return _build(option, value, path)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{path}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)  # type: ignore[arg-type]
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise TypeError(f"{path}: expected a list")
        return [_build(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{path}: expected an object")
        _, item = typing.get_args(hint)
        return {k: _build(item, v, f"{path}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise TypeError(f"{path}: expected {hint.__name__}, got {type(value).__name__}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], path: str = "result") -> T:
    """Rebuild `cls` from parsed JSON, checking every key and type; raises ValueError/TypeError naming the path."""
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected an object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{path}.{f.name}: missing")
            continue
        kwargs[f.name] = _build(hints[f.name], data[f.name], f"{path}.{f.name}")
    return cls(**kwargs)
