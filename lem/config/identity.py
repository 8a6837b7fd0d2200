"""A configuration's identity: the hash of everything that shapes what is measured, derived from the fields."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from lem.config.schema import ExperimentConfig


def unhashed_keys(config: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys of the fields (or whole sections) declared `hashed=False`, the backend option's included."""
    for f in dataclasses.fields(config):
        key = f"{prefix}{f.name}"
        value = getattr(config, f.name)
        if not f.metadata.get("hashed", True):
            yield key
        elif dataclasses.is_dataclass(value):
            yield from unhashed_keys(value, f"{key}.")


def _without(data: dict[str, Any], dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if rest and isinstance(data.get(head), dict):
        _without(data[head], rest)
    elif not rest:
        data.pop(head, None)


def config_hash(config: ExperimentConfig) -> str:
    """sha256 (first 16 hex digits) of the config as canonical JSON, without the keys declared `hashed=False`."""
    data = dataclasses.asdict(config)
    for key in unhashed_keys(config):
        _without(data, key)
    canonical = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
