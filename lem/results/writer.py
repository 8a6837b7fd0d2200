"""Writes results.json (atomically), and names the tables beside it, in the Hydra job directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lem.atomic import write_json_atomic
from lem.results.schema import Result

RESULTS_FILE = "results.json"
TIMESERIES_FILE = "timeseries.parquet"
#: Per-request energy and timings of the measured window (lem.attribution).
REQUESTS_FILE = "requests.parquet"


def write_result(job_dir: Path, result: Result) -> Path:
    """Write `result` as job_dir/results.json; the old file or none survives a crash, never a partial one."""
    path = job_dir / RESULTS_FILE
    write_json_atomic(path, dataclasses.asdict(result))
    return path
