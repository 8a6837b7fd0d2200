"""Engine reuse across the jobs of one process: at most one loaded engine is kept between jobs.

A job's backend takes over the kept engine when their engine keys are equal (`Backend.engine_key`: the model files'
fingerprint, what the config decides the engine and loader get, i.e. its spec's pure `engine_arguments`, and what
only load knows, such as the device); otherwise the kept engine is closed before the new one loads. The idle
baseline that was in force when the kept engine loaded travels with it, so that no baseline is ever measured with an
engine resident. `python -m lem` closes what is kept when the sweep ends, however it ends.

A dry run plans the same without a backend: `planned_key` is the key's pure part, and `planned_loads` walks a job
order counting the loads. It cannot see what only load knows, so it is an estimate for jobs whose device or host
settings differ (they do not within one sweep on one machine).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lem.backends.checkpoint import find_model_folder, model_fingerprint
from lem.backends.registry import backend_spec
from lem.config.schema import ExperimentConfig

if TYPE_CHECKING:
    from lem.assemble import IdleBaseline
    from lem.backends.base import Backend, LoadInfo

log = logging.getLogger(__name__)


def key_digest(key: dict[str, Any]) -> str:
    """An engine key as a short hash (sha256 of its canonical JSON, first 16 hex digits)."""
    canonical = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def reuse_key(backend: Backend) -> str:
    """The backend's engine key as a short hash (`key_digest`)."""
    return key_digest(backend.engine_key())


def reuse_applies(config: ExperimentConfig) -> bool:
    """Whether a job takes over and leaves engines: backend.reuse, in the offline scenario (a server is its own)."""
    return config.backend.reuse and config.scenario.name == "offline"


def planned_key(config: ExperimentConfig) -> str:
    """The digest of what a dry run knows of `config`'s engine key: the backend's `engine_arguments` for the model's
    folder with its fingerprint, where the model is on this machine, else for the model's name (nothing is built or
    downloaded). fp_precision=auto stays unresolved: it resolves the same way for every job on one machine."""
    folder = find_model_folder(config.model, config.cache_dir)
    model_path = str(folder) if folder is not None else config.model
    fingerprint = model_fingerprint(model_path) if folder is not None else {"model": config.model}
    return key_digest({"model": fingerprint, **backend_spec(config.backend.name).engine_arguments(config, model_path)})


def planned_loads(configs: Iterable[ExperimentConfig]) -> list[bool]:
    """For jobs run in this order in one process: whether each loads its engine (True) or takes over the previous
    job's (False). A job loads when it is the first, when reuse does not apply to it or to the job before (which then
    leaves nothing), or when its planned key differs from the previous job's."""
    loads, previous = [], None
    for config in configs:
        key = planned_key(config) if reuse_applies(config) else None
        loads.append(key is None or key != previous)
        previous = key
    return loads


@dataclass
class _Kept:
    key: str
    backend: Backend
    load_info: LoadInfo
    baseline: IdleBaseline
    device_key: str


class EngineKeeper:
    """Holds the engine a finished job left for the next one."""

    def __init__(self) -> None:
        self._kept: _Kept | None = None

    def resident_baseline(self, device_key: str) -> IdleBaseline | None:
        """The baseline taken before the resident engine loaded, if it covers the same devices; an engine resident on
        other devices is closed first (the next job will load its own), so that the caller can measure idle."""
        if self._kept is not None and self._kept.device_key != device_key:
            self.close()
        return self._kept.baseline if self._kept is not None else None

    def take_over(self, backend: Backend, key: str) -> LoadInfo | None:
        """Hand the kept engine to `backend` when the keys are equal and return its LoadInfo; else close it, None."""
        kept, self._kept = self._kept, None
        if kept is not None and kept.key == key:
            backend.adopt(kept.backend)
            log.info("engine reused (key %s)", key)
            return kept.load_info
        if kept is not None:
            log.info("engine key changed (%s -> %s): closing the kept engine", kept.key, key)
            kept.backend.close()
        return None

    def keep(self, backend: Backend, key: str, load_info: LoadInfo, baseline: IdleBaseline, device_key: str) -> None:
        """Keep `backend`'s engine for the next job (closing any other one)."""
        self.close()
        self._kept = _Kept(key, backend, load_info, baseline, device_key)

    def close(self) -> None:
        """Close the kept engine, if any (restoring what it changed in the process)."""
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.backend.close()


class EngineLease:
    """One job's hold on its backend: closed when the run ends, unless the run succeeded and reuse is on, in which
    case the engine is kept for the next job. Registered with the RunRecord, so every ending goes through `close`."""

    def __init__(self, backend: Backend, keeper: EngineKeeper | None) -> None:
        self.backend = backend
        self.key = reuse_key(backend) if keeper is not None else None
        self._keeper = keeper
        self._keep: tuple[LoadInfo, IdleBaseline, str] | None = None

    def take_over(self) -> LoadInfo | None:
        """The kept engine's LoadInfo when this job reuses it (None: load anew; any other kept engine is closed)."""
        if self._keeper is None or self.key is None:
            return None
        return self._keeper.take_over(self.backend, self.key)

    def keep_for_next_job(self, load_info: LoadInfo, baseline: IdleBaseline, device_key: str) -> None:
        """The run succeeded: leave the engine to the next job instead of closing it (when reuse is on)."""
        self._keep = (load_info, baseline, device_key)

    def close(self) -> None:
        if self._keeper is not None and self.key is not None and self._keep is not None:
            self._keeper.keep(self.backend, self.key, *self._keep)
        else:
            self.backend.close()
