"""The one reader of results.json: every consumer (report, campaign resume, tests) goes through `read_job`.

`job_dirs` finds the job folders of a sweep (or a single run) for readers that start from a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lem.results.schema import Result
from lem.results.strict import from_dict
from lem.results.writer import RESULTS_FILE

#: The folder Hydra writes into every job folder it makes: such a folder without results.json is a job that did not
#: finish (`missing`).
HYDRA_FOLDER = ".hydra"


@dataclass(frozen=True)
class JobResult:
    """A job folder's results.json, parsed strictly.

    `status` is the file's own (`ok`, `failed`, `interrupted`, `running`), or `missing` (no file: the job never
    finished writing) or `unreadable` (not JSON, or not the schema); `reason` says why for those two.
    """

    job_dir: Path
    status: str
    result: Result | None
    reason: str | None = None

    def ok_with_hash(self, config_hash: str) -> bool:
        """True when the job finished ok with exactly this configuration (campaign resume's test)."""
        return self.status == "ok" and self.result is not None and self.result.config_hash == config_hash


def read_result(path: Path) -> Result:
    """Parse one results.json strictly; raises OSError, ValueError or TypeError naming what is wrong."""
    return from_dict(Result, json.loads(path.read_text()))


def read_job(job_dir: Path) -> JobResult:
    """The job's result and status; never raises for a missing or damaged file."""
    path = job_dir / RESULTS_FILE
    if not path.is_file():
        return JobResult(job_dir, "missing", None, f"no {RESULTS_FILE} (the job did not finish)")
    try:
        result = read_result(path)
    except (OSError, ValueError, TypeError) as ex:
        return JobResult(job_dir, "unreadable", None, f"{type(ex).__name__}: {ex}")
    return JobResult(job_dir, result.status, result)


def job_dirs(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every job folder under `root` (itself included): one holding results.json or `.hydra/`, outside `exclude`.

    Sorted as the sweep numbered them: folder names that are numbers compare as numbers (2 before 10).
    """
    found = {p.parent for p in root.rglob(RESULTS_FILE)} | {p.parent for p in root.rglob(HYDRA_FOLDER) if p.is_dir()}
    if exclude is not None:
        found = {d for d in found if not d.resolve().is_relative_to(exclude.resolve())}
    return sorted(
        found, key=lambda d: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in d.relative_to(root).parts]
    )
