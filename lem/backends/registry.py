"""The backends lem knows: adding one is a new folder under lem/backends/ with a SPEC, and one entry here."""

from __future__ import annotations

from lem.backends import pytorch, tensorrt, vllm
from lem.backends.spec import BackendSpec
from lem.errors import LemError

BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (pytorch.SPEC, vllm.SPEC, tensorrt.SPEC)}


def backend_spec(name: str) -> BackendSpec:
    """The spec of backend `name`; a LemError naming the choices for an unknown one."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise LemError(f"backend={name}: no such backend; choose one of: {', '.join(sorted(BACKENDS))}") from None
