"""Built TensorRT-LLM engines, cached on disk and keyed by a hash of everything that shapes the build.

Layout: `<root>/<key>/` holds one engine folder as TensorRT-LLM saves it, plus `MARKER`, written last. An entry
without the marker (a build that crashed, a copy cut short) is never reused: it is removed and built again. A build
runs in a staging folder beside the entries and is renamed into place while a per-key lock is held, so concurrent
runs build each engine once and never see a partial one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lem.atomic import install_folder, write_json_atomic
from lem.backends.checkpoint import model_fingerprint
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.tensorrt.translate import BUILD_ONLY, EnumMember
from lem.config.schema import ExperimentConfig
from lem.model.resolve import cache_root

MARKER = "lem_engine.json"
#: LLM keywords that shape the built engine; the other LLM keywords are runtime settings read when it loads.
ENGINE_LLM_KEYWORDS = ("dtype", "tensor_parallel_size", "pipeline_parallel_size")


def engine_cache_root(config: ExperimentConfig) -> Path:
    """`backend.engine_cache_dir`, else `<lem cache>/trt_engines` (lem's cache: cache_dir, $LEM_CACHE_DIR, ~/.cache)."""
    backend = config.backend
    assert isinstance(backend, TensorRTConfig)
    if backend.engine_cache_dir is not None:
        return Path(backend.engine_cache_dir).expanduser()
    return cache_root(config.cache_dir) / "trt_engines"


def build_inputs(
    config: ExperimentConfig, model_path: str, kwargs: dict[str, dict[str, Any]], tensorrt_llm_version: str
) -> dict[str, Any]:
    """Everything that shapes the engine: the model, the build objects' keyword arguments (dtype, quantization and
    calibration included), the engine-shaping LLM keywords plus every extra_runtime_args key, and the version."""
    backend = config.backend
    assert isinstance(backend, TensorRTConfig)
    llm = {k: kwargs["LLM"][k] for k in ENGINE_LLM_KEYWORDS if k in kwargs["LLM"]}
    return {
        "model": model_fingerprint(model_path),
        "tensorrt_llm": tensorrt_llm_version,
        "LLM": {**llm, "extra_runtime_args": dict(backend.extra_runtime_args)},
        **{name: kwargs[name] for name in BUILD_ONLY},
    }


def _json_value(value: Any) -> str:
    if isinstance(value, EnumMember):
        return f"{value.enum}.{value.member}"
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be part of an engine cache key")


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=_json_value)


def cache_key(inputs: dict[str, Any]) -> str:
    """A 32-hex-digit SHA-256 prefix of the inputs as canonical JSON."""
    return hashlib.sha256(_canonical_json(inputs).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CachedEngine:
    """An engine folder in the cache; `built` says whether this call built it, `build_s` how long that took (s)."""

    path: Path
    built: bool
    build_s: float | None


class EngineCache:
    """Engine folders under `root`, one per key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        """Where the engine for `key` lives (it may not exist yet)."""
        return self.root / key

    def is_complete(self, key: str) -> bool:
        """Whether the entry for `key` exists and carries the marker, which is written last."""
        return (self.entry(key) / MARKER).is_file()

    def get_or_build(
        self, key: str, inputs: dict[str, Any], build: Callable[[Path], None], *, force: bool = False
    ) -> CachedEngine:
        """The complete entry for `key`, or one built now by `build(staging_folder)` (always built when `force`).

        `build` must write a complete engine folder into the staging folder it is given; the marker (with the
        build inputs) is written after it. The build time covers `build` only. See `lem.atomic.install_folder`.
        """
        build_times_s: list[float] = []

        def build_with_marker(staging: Path) -> None:
            started = time.perf_counter()
            build(staging)
            build_times_s.append(time.perf_counter() - started)
            record = {
                "key": key,
                "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "build_s": build_times_s[0],
                "inputs": json.loads(_canonical_json(inputs)),
            }
            write_json_atomic(staging / MARKER, record)

        if not install_folder(self.entry(key), build_with_marker, marker=MARKER, force=force):
            return CachedEngine(self.entry(key), built=False, build_s=None)
        return CachedEngine(self.entry(key), built=True, build_s=build_times_s[0])
