"""BackendSpec: everything lem knows about a backend, declared once in the backend's own folder.

Schema choices, ConfigStore registration, introspection, validation, `create_backend` and the install hints in
error messages all read the specs in `lem.backends.registry`; nothing else lists backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lem.backends.escape_hatches import KeywordReader
from lem.config.findings import Rule
from lem.config.machine import SkipCondition
from lem.config.schema import BackendConfig, ExperimentConfig


@dataclass(frozen=True)
class BackendSpec:
    """One backend.

    `config` is its `backend` group option (its `name` field's default is the backend's name); `implementation` is
    "module:class" of its Backend, imported only when a run loads a model; `package` is what that module needs
    and `install_hint` says how to get it; `engine_arguments(config, model_path)` is the pure part of its engine key
    (its translate module: what the config decides the engine and loader get; `lem.engines`), which a dry run can
    compute without the engine; `rules` and `skip_conditions` are its own validation; `keyword_readers` says, per
    escape hatch (`lem.backends.escape_hatches`), how to read what the installed engine accepts there.
    """

    config: type[BackendConfig]
    implementation: str
    package: str
    install_hint: str
    engine_arguments: Callable[[ExperimentConfig, str], dict[str, Any]]
    rules: tuple[Rule, ...] = ()
    skip_conditions: tuple[SkipCondition, ...] = ()
    keyword_readers: Mapping[str, KeywordReader] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The `backend=` option name, as the config dataclass declares it."""
        return str(self.config.__dataclass_fields__["name"].default)
