"""Shared test helpers: real Hydra composition and the real `python -m lem` command."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from lem.config.store import compose_config

REPO = Path(__file__).resolve().parent.parent
__all__ = [
    "REPO",
    "compose_config",
    "load_module",
    "one_error_line",
    "result_files",
    "run_lem",
    "start_lem",
    "wait_until",
]


def load_module(path: Path, name: str) -> ModuleType:
    """The Python file `path` imported as module `name` (a script, or a test double written at run time); registered
    in sys.modules, where its dataclasses look their module up."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _lem_env(env: dict[str, str] | None) -> dict[str, str]:
    """This process's environment, offline, without HYDRA_FULL_ERROR (so that lem prints its one-line errors)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return full_env


def run_lem(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, module: str = "lem"
) -> subprocess.CompletedProcess[str]:
    """Run `python -m lem ARGS` in `cwd` (Hydra writes outputs/ there)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=_lem_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_lem(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m lem ARGS` in the background, as run_lem runs it (stdout and stderr piped, as text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "lem", *args],
        cwd=cwd,
        env=_lem_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` every 0.2 s; fail naming `what` after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


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
