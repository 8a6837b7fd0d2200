"""Registers the schema and the `backend` group options in Hydra's ConfigStore (the only place that does)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from lem.config.introspection import BACKEND_CONFIGS
from lem.config.schema import ExperimentConfig

SCHEMA_NAME = "lem_schema"


def register_configs() -> None:
    """Store `lem_schema` (ExperimentConfig) and `backend/<name>` for each backend; idempotent."""
    store = ConfigStore.instance()
    store.store(name=SCHEMA_NAME, node=ExperimentConfig)
    for name, cls in BACKEND_CONFIGS.items():
        store.store(group="backend", name=name, node=cls)
