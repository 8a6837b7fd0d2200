"""`param()`: one dataclass field carrying a parameter's default, description, allowed values and mapping.

Every config parameter in lem is declared with `param`, so its metadata lives on the field itself;
validation (`lem.config.rules`), introspection and the generated reference all read it from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any


def param(
    default: Any = dataclasses.MISSING,
    *,
    description: str,
    default_factory: Callable[[], Any] | None = None,
    choices: Sequence[Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    maps_to: str | None = None,
    note: str | None = None,
    unsupported: str | None = None,
    hashed: bool = True,
) -> Any:
    """A dataclass field whose metadata describes the parameter.

    `choices` lists the allowed values (None always allowed for Optional fields); `ge`/`gt`/`le` bound numbers;
    `maps_to` names the backend API argument the value is passed to (e.g. `EngineArgs.max_num_seqs`);
    `note` records a caveat shown in the docs; `unsupported` says why the backend no longer accepts the parameter:
    such a field is kept for config compatibility, never passed on, and a non-null value is an error finding.
    `hashed=False` marks a parameter (or a whole section) that changes nothing about what is measured: it is left out
    of the config hash, so campaign resume still recognises a finished job when only such a value changed.
    """
    metadata = {
        "description": description,
        "choices": tuple(choices) if choices is not None else None,
        "ge": ge,
        "gt": gt,
        "le": le,
        "maps_to": maps_to,
        "note": note,
        "unsupported": unsupported,
        "hashed": hashed,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
