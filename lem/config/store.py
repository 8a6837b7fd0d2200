"""Registers the schema and the `backend` group options in Hydra's ConfigStore (the only place that does)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore

from lem.backends.registry import BACKENDS
from lem.config.schema import SCENARIOS, ExperimentConfig

SCHEMA_NAME = "lem_schema"
#: conf/ at the repository root: the primary config and the experiment, campaign and launcher presets.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


#: Each config group's options: group → option name → its dataclass.
GROUP_OPTIONS: dict[str, dict[str, type]] = {
    "backend": {name: spec.config for name, spec in BACKENDS.items()},
    "scenario": dict(SCENARIOS),
}


def register_configs() -> None:
    """Store `lem_schema` (ExperimentConfig), `backend/<name>` per backend and `scenario/<name>` per scenario.

    `hydra/sweeper=lem_campaign` is not stored here: the plugin module stores it when Hydra's plugin scan imports it.
    """
    store = ConfigStore.instance()
    store.store(name=SCHEMA_NAME, node=ExperimentConfig)
    for group, options in GROUP_OPTIONS.items():
        for name, node in options.items():
            store.store(group=group, name=name, node=node)


def compose_config(*overrides: str) -> ExperimentConfig:
    """Compose conf/config.yaml with `overrides` exactly as `python -m lem` does, as the dataclass (no validation)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]
