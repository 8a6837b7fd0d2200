"""Shared test helpers: real Hydra composition and the real `python -m lem` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lem.app import CONFIG_DIR
from lem.config.schema import ExperimentConfig
from lem.config.store import register_configs

REPO = Path(__file__).resolve().parent.parent


def compose_config(*overrides: str) -> ExperimentConfig:
    """Compose conf/config.yaml with `overrides` exactly as `python -m lem` does, as the dataclass."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def run_lem(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, module: str = "lem"
) -> subprocess.CompletedProcess[str]:
    """Run `python -m lem ARGS` in `cwd` (Hydra writes outputs/ there)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def lem_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One lem cache (tiny model, baselines) for the whole session."""
    path = Path(os.environ.get("LEM_TEST_CACHE") or tmp_path_factory.mktemp("lem_cache"))
    yield path
