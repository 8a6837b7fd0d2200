"""Shared test helpers: real Hydra composition and the real `python -m lem` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lem.config.store import compose_config

REPO = Path(__file__).resolve().parent.parent
__all__ = ["REPO", "compose_config", "one_error_line", "result_files", "run_lem"]


def run_lem(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, module: str = "lem"
) -> subprocess.CompletedProcess[str]:
    """Run `python -m lem ARGS` in `cwd` (Hydra writes outputs/ there)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def result_files(root: Path) -> list[Path]:
    """results.json of every single run (`python -m lem` without -m) under `root`."""
    return sorted(root.glob("outputs/*/*/results.json"))


def one_error_line(stderr: str) -> str:
    """The one `lem: error:` line a bad input must produce; fails on none, several, or a traceback."""
    lines = [line for line in stderr.splitlines() if line.startswith("lem: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="session")
def lem_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One lem cache (tiny model, baselines) for the whole session."""
    path = Path(os.environ.get("LEM_TEST_CACHE") or tmp_path_factory.mktemp("lem_cache"))
    yield path
