"""Per-job overhead of a sweep: a job's wall time minus its measured window, over a sweep of the tiny model.

Runs `python -m lem -m` (Hydra's basic sweeper and launcher, one process) and reads the results.json files: a job's
wall time is the time between its results.json and the previous job's (the first job, which also pays the process
start, the imports and the engine load, is reported apart). PyTorch: 12 jobs (batch size x output length), target
median overhead under 1.5 s. vLLM: 6 jobs over max_output_tokens, one engine reused (backend.reuse), target at most
0.5 s per job after the first.

    python scripts/bench_sweep.py [--backend pytorch|vllm] [--sweeper basic|lem_campaign]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lem.results.reader import read_result

GRIDS = {
    "pytorch": ["backend.batch_size=1,2,4,8", "max_output_tokens=16,24,32"],  # 12 jobs
    "vllm": ["backend=vllm", "max_output_tokens=8,16,24,32,40,48"],  # 6 jobs, one engine
}
COMMON = ["num_input_prompts=16", "baseline.duration_s=1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=tuple(GRIDS), default="pytorch")
    parser.add_argument("--sweeper", choices=("basic", "lem_campaign"), default="basic")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep"
        command = [sys.executable, "-m", "lem", "-m", *GRIDS[args.backend], *COMMON, f"hydra.sweep.dir={sweep}"]
        if args.sweeper == "lem_campaign":
            command += ["hydra/sweeper=lem_campaign", "campaign.name=bench"]
        print(" ".join(command[1:]))
        started = time.time()
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        run = subprocess.run(command, cwd=tmp, capture_output=True, text=True, env=env)
        total_s = time.time() - started
        if run.returncode != 0:
            sys.exit(f"sweep failed:\n{run.stderr[-3000:]}")
        jobs = sorted(
            ((path.stat().st_mtime, read_result(path)) for path in sweep.glob("*/results.json")),
            key=lambda job: job[0],
        )
    previous = started
    rows = []
    for finished, result in jobs:
        assert result.metrics is not None, f"job did not finish ok: {result.error}"
        window_s = result.metrics.duration_s
        rows.append((finished - previous, window_s, result.phases_s))
        previous = finished
    print(f"{len(rows)} jobs in {total_s:.1f} s")
    for index, (wall_s, window_s, phases) in enumerate(rows):
        detail = ", ".join(f"{k} {v:.2f}" for k, v in phases.items() if v >= 0.05)
        print(
            f"job {index:2d}: wall {wall_s:5.2f} s, window {window_s:5.2f} s, overhead {wall_s - window_s:5.2f} s"
            f"  ({detail})"
        )
    overheads = [wall - window for wall, window, _ in rows[1:]]
    print(f"first job overhead {rows[0][0] - rows[0][1]:.2f} s (process start, imports, engine load)")
    target = "median < 1.5 s" if args.backend == "pytorch" else "<= 0.5 s each"
    print(
        f"per-job overhead, jobs 2..{len(rows)}: median {statistics.median(overheads):.2f} s, "
        f"max {max(overheads):.2f} s (target: {target})"
    )


if __name__ == "__main__":
    main()
