"""Command-line overrides as users type them, rewritten for Hydra before it parses them.

An escape hatch (a backend field typed dict[str, Any], see `lem.backends.escape_hatches`) starts empty, so Hydra
rejects `backend.extra.enable_foo=true` ("use +backend.extra.enable_foo=true"): a plain override must name a key
that exists. lem rewrites a plain override whose key runs through an escape hatch into `++key=value`, which adds the
key or overrides it (a preset may have set it), sweeps included (`-m backend.extra.x=1,2`). Which keys the engine
accepts is validation's business (`lem.config.rules`), as is a hatch that the selected backend does not have.
"""

from __future__ import annotations

import re
from functools import cache

from lem.backends.escape_hatches import escape_hatch_fields
from lem.backends.registry import BACKENDS


@cache
def _through_a_hatch() -> re.Pattern[str]:
    hatches = sorted({hatch for spec in BACKENDS.values() for hatch in escape_hatch_fields(spec.config)})
    return re.compile(rf"backend\.(?:{'|'.join(hatches)})\.[^=]+=")


def as_typed(overrides: list[str]) -> list[str]:
    """`overrides` (command-line arguments) with every plain `backend.<hatch>.<key>=value` made `++...`."""
    return [f"++{arg}" if _through_a_hatch().match(arg) else arg for arg in overrides]
