"""Writes results.json (atomically) and timeseries.parquet into the Hydra job directory."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from lem.atomic import write_json_atomic
from lem.results.schema import Result

RESULTS_FILE = "results.json"
TIMESERIES_FILE = "timeseries.parquet"
#: Config keys that change nothing about what is measured, left out of the hash.
_UNHASHED = ("dry_run", "config_name", "campaign")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the config as canonical JSON, without keys that do not affect the run."""
    canonical = json.dumps({k: v for k, v in config.items() if k not in _UNHASHED}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def write_result(job_dir: Path, result: Result) -> Path:
    """Write `result` as job_dir/results.json; the old file or none survives a crash, never a partial one."""
    path = job_dir / RESULTS_FILE
    write_json_atomic(path, dataclasses.asdict(result))
    return path
