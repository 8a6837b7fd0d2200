"""Sweeps on a real SLURM cluster (scripts/start_slurm.sh) through hydra-submitit-launcher and lem's presets.

Every job runs the built-in tiny model on the one local node; the sweep process polls SLURM (and sacct, through
slurmdbd) exactly as on a real cluster. Without a cluster that answers `sinfo`, these tests are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import compose_config, one_error_line, run_lem, start_lem, wait_until

from lem.config.machine import JobTarget, MachineFacts, probe_machine, slurm_target
from lem.config.rules import validate

QUICK = [
    "num_input_prompts=4",
    "warmup.mode=fixed",
    "warmup.count=1",
    "baseline.method=off",
    "timeseries.enabled=false",
]
#: Keys that exist only under SLURM: the allocation and the variables SLURM sets.
SLURM_ONLY = ("environment.slurm.", "environment.environment_variables.")
#: A job this busy (fixed warm-up generations) runs for minutes: long enough to be signalled or killed mid-run.
BUSY = 100_000
#: Long enough to be signalled after it has started, short enough to finish after a requeue (seconds, not minutes).
REQUEUE_WARMUP = 300


def _cluster_down_reason() -> str | None:
    """Why the SLURM tests cannot run here, or None when a cluster answers and the launcher is installed."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (no sinfo); start one with `scripts/start_slurm.sh start`"
    answer = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30, check=False)
    if answer.returncode != 0 or not answer.stdout.strip():
        return f"sinfo does not answer ({answer.stderr.strip()[:200]}); start one with `scripts/start_slurm.sh start`"
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        return "hydra-submitit-launcher is not installed: pip install -e .[slurm]"
    return None


_DOWN = _cluster_down_reason()


def on_cluster(test: Any) -> Any:
    """Mark `test` slurm and slow, skipped (with the reason) unless a cluster answers."""
    return pytest.mark.slurm(pytest.mark.slow(pytest.mark.skipif(_DOWN is not None, reason=str(_DOWN))(test)))


@pytest.fixture
def job_name() -> Iterator[str]:
    """A SLURM job name unique to this test; its jobs are cancelled afterwards, whatever happened."""
    name = f"lemtest-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["scancel", "--name", name], capture_output=True, check=False, timeout=30)


def _sweep_args(sweep: Path, name: str, *args: str) -> list[str]:
    return [
        "-m",
        "hydra/launcher=lem_slurm_cpu",
        f"hydra.launcher.name={name}",
        f"hydra.sweep.dir={sweep}",
        *QUICK,
        *args,
    ]


def _slurm_job(name: str, task: int) -> str:
    """The SLURM id of sweep job `task` among the running jobs named `name` (array task `task`, or the one job of a
    one-job sweep, which submitit submits without an array)."""
    listed = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %K"], capture_output=True, text=True, check=True)
    (job_id,) = [
        i for i, array_task in (line.split() for line in listed.stdout.splitlines()) if array_task in (str(task), "N/A")
    ]
    return job_id


def _job_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def _results(sweep: Path) -> dict[str, dict[str, Any]]:
    """results.json of every job directory under `sweep`, by directory name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("**/results.json"))}


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of every leaf of a results.json, but for the keys that only SLURM jobs have."""
    keys = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            keys |= _keys(value, f"{path}.")
        elif not path.startswith(SLURM_ONLY):
            keys.add(path)
    return keys


def _point(result: dict[str, Any]) -> tuple[int, int]:
    return result["config"]["backend"]["batch_size"], result["config"]["max_output_tokens"]


@pytest.mark.parametrize("preset", ["lem_slurm_cpu", "lem_slurm_gpu"])
def test_launcher_presets_requeue_before_the_time_limit(preset: str, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e .[slurm]")
    shown = run_lem(f"hydra/launcher={preset}", "--cfg", "hydra", "-p", "hydra.launcher", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    launcher = yaml.safe_load(shown.stdout)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert 0 < launcher["signal_delay_s"] < launcher["timeout_min"] * 60
    assert launcher["max_num_timeout"] >= 1
    if preset == "lem_slurm_gpu":
        assert launcher["gres"] == "gpu:1" and launcher["additional_parameters"]["exclusive"] is True


@on_cluster
def test_sweep_on_slurm_records_the_allocation_and_matches_a_local_run(
    tmp_path: Path, lem_cache: Path, job_name: str
) -> None:
    grid = ["backend.batch_size=1,2", "max_output_tokens=4,8"]
    on_slurm = run_lem(
        *_sweep_args(tmp_path / "slurm", job_name, *grid), cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)}
    )
    assert on_slurm.returncode == 0, on_slurm.stderr[-3000:]
    local = run_lem(
        "-m",
        f"hydra.sweep.dir={tmp_path / 'local'}",
        *QUICK,
        *grid,
        cwd=tmp_path,
        env={"LEM_CACHE_DIR": str(lem_cache)},
    )
    assert local.returncode == 0, local.stderr[-3000:]

    slurm_results, local_results = _results(tmp_path / "slurm"), _results(tmp_path / "local")
    assert len(slurm_results) == len(local_results) == 4
    assert all(r["status"] == "ok" for r in [*slurm_results.values(), *local_results.values()])
    accounted = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", "now-1hours", "--name", job_name, "-o", "JobIDRaw"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    array_ids = set()
    for result in slurm_results.values():
        slurm = result["environment"]["slurm"]
        assert slurm["SLURM_JOB_ID"] in accounted, "the recorded job id is one SLURM accounted for this sweep"
        assert slurm["SLURMD_NODENAME"] and slurm["SLURM_JOB_PARTITION"] == "cpu"
        assert slurm["exclusive"] is False, "lem_slurm_cpu shares the node"
        assert "SLURM_RESTART_COUNT" not in slurm
        array_ids.add(slurm["SLURM_ARRAY_JOB_ID"])
    assert len(array_ids) == 1, "one job array for the sweep"
    assert sorted(r["environment"]["slurm"]["SLURM_ARRAY_TASK_ID"] for r in slurm_results.values()) == list("0123")
    assert local_results["0"]["environment"]["slurm"] == {}

    by_point = {_point(r): r for r in local_results.values()}
    for result in slurm_results.values():
        twin = by_point[_point(result)]
        assert _keys(result) == _keys(twin), "same result shape under SLURM and locally"
        assert result["config_hash"] == twin["config_hash"]
        assert result["metrics"]["output_tokens"] == twin["metrics"]["output_tokens"]
    assert (tmp_path / "slurm" / ".submitit").is_dir()

    summaries = {}
    for name in ("slurm", "local"):
        report = run_lem(str(tmp_path / name), module="lem.report", cwd=tmp_path)
        assert report.returncode == 0, report.stderr[-2000:]
        summaries[name] = pd.read_csv(tmp_path / name / "report" / "summary.csv")
    assert list(summaries["slurm"].columns) == list(summaries["local"].columns), "the same report, whatever launched"
    rows = ["group", "metric", "workload"]
    assert sorted(summaries["slurm"][rows].itertuples(index=False)) == sorted(
        summaries["local"][rows].itertuples(index=False)
    )


@on_cluster
def test_a_job_that_raises_ends_the_sweep_with_its_error(tmp_path: Path, lem_cache: Path, job_name: str) -> None:
    sweep = tmp_path / "sweep"
    run = run_lem(
        *_sweep_args(sweep, job_name, "model=lem-tiny-llama,/nonexistent/model"),
        "+hydra.launcher.additional_parameters.exclusive=true",
        cwd=tmp_path,
        env={"LEM_CACHE_DIR": str(lem_cache)},
        timeout=300,
    )
    assert run.returncode == 2, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("lem: error: model='/nonexistent/model'") and "Traceback" not in run.stderr
    results = _results(sweep)
    assert results["0"]["status"] == "ok" and results["1"]["status"] == "failed"
    assert results["1"]["error"]["phase"] == "prepare"
    assert [r["environment"]["slurm"]["exclusive"] for r in results.values()] == [True, True], "--exclusive recorded"


@on_cluster
def test_a_killed_job_ends_the_sweep_with_a_clear_error_not_a_hang(
    tmp_path: Path, lem_cache: Path, job_name: str
) -> None:
    sweep = tmp_path / "sweep"
    sweep_run = start_lem(
        *_sweep_args(sweep, job_name, f"warmup.count=1,{BUSY}"), cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)}
    )
    try:
        wait_until(lambda: (sweep / "1" / ".hydra").is_dir(), 180, "the busy job to start")
        subprocess.run(["scancel", "--signal=KILL", _slurm_job(job_name, 1)], check=True)
        killed = time.monotonic()
        _, stderr = sweep_run.communicate(timeout=180)
    finally:
        sweep_run.kill()
    ended_s = time.monotonic() - killed
    assert sweep_run.returncode != 0
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("lem: error: Job ") and "has not produced any output (state: CANCELLED" in last
    assert ended_s < 120, f"the sweep took {ended_s:.0f} s to notice the killed job"
    results = _results(sweep)
    assert list(results) == ["0"] and results["0"]["status"] == "ok", "the other job's result is intact"


@on_cluster
@pytest.mark.parametrize(
    ("timeout_min", "max_num_timeout", "case", "requeued"),
    [(30, 0, "preempted", True), (5, 1, "timed-out", True), (5, 0, "timed-out", False)],
)
def test_a_signalled_job_is_requeued_and_runs_once_cleanly(
    timeout_min: int, max_num_timeout: int, case: str, requeued: bool, tmp_path: Path, lem_cache: Path, job_name: str
) -> None:
    # SIGUSR2 is what SLURM sends signal_delay_s before the time limit (and what a preempting site sends). submitit
    # takes it for a time-out when the job has run past min(80 %, limit - 10 min) of its limit, so always under a
    # 5 min limit and never in the first minutes of a 30 min one; a time-out is requeued at most max_num_timeout
    # times, a preemption always.
    sweep = tmp_path / "sweep"
    args = _sweep_args(
        sweep,
        job_name,
        f"warmup.count={REQUEUE_WARMUP}",
        f"hydra.launcher.timeout_min={timeout_min}",
        f"hydra.launcher.max_num_timeout={max_num_timeout}",
    )
    sweep_run = start_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    try:
        wait_until(lambda: (sweep / "0" / ".hydra").is_dir(), 180, "the job to start")
        job_id = _slurm_job(job_name, 0)
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
        if requeued:
            wait_until(lambda: _job_state(job_id) == "PENDING", 60, "the job to be requeued")
            assert not (sweep / "0" / "results.json").exists(), "the interrupted attempt wrote nothing"
            # SLURM holds a requeued job for 120 s (BeginTime); let it start now to keep the test short.
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
        _, stderr = sweep_run.communicate(timeout=300)
    finally:
        sweep_run.kill()
    submitit_log = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.*"))
    assert f"this job is {case}" in submitit_log
    results = _results(sweep)
    if requeued:
        assert sweep_run.returncode == 0, stderr[-3000:]
        assert list(results) == ["0"] and results["0"]["status"] == "ok", "exactly one result, from the second run"
        assert results["0"]["environment"]["slurm"]["SLURM_RESTART_COUNT"] == "1"
        assert sorted(p.name for p in sweep.iterdir()) == [".submitit", "0", "multirun.yaml"], "no duplicate job dir"
        assert "Requeued job" in submitit_log
    else:
        assert sweep_run.returncode != 0
        assert "Job not requeued because: timed-out too many times" in stderr.strip().splitlines()[-1]
        # Signalled inside the harness, the job records its failure; before it, it writes nothing. Never a partial one.
        assert all(
            r["status"] == "failed" and "timed-out too many times" in r["error"]["message"] for r in results.values()
        )


# --- dry runs meant for SLURM: nothing submitted, hardware rules judged against the request ---------------------

SUBMITIT = pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None, reason="pip install -e .[slurm]"
)
_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def _accounted(name: str) -> list[str]:
    """Ids of the jobs named `name` that SLURM knows (queued, running or accounted in the last hour)."""
    queued = ["squeue", "-h", "-n", name, "-o", "%i"]
    accounted = ["sacct", "-X", "-n", "-P", "-S", "now-1hours", "--name", name, "-o", "JobIDRaw"]
    return [
        i
        for command in (queued, accounted)
        for i in subprocess.run(command, capture_output=True, text=True).stdout.split()
    ]


@pytest.mark.parametrize(
    ("fields", "count", "asked"),
    [
        ({"gres": "gpu:4"}, 4, "hydra.launcher.gres=gpu:4"),
        ({"gres": "gpu:a100:2,shard:1"}, 2, "hydra.launcher.gres=gpu:a100:2,shard:1"),
        ({"gres": "gpu"}, 1, "hydra.launcher.gres=gpu"),
        ({"gres": "shard:2"}, 0, "hydra.launcher.gres=shard:2"),
        ({"gres": None, "gpus_per_task": "h100:8"}, 8, "hydra.launcher.gpus_per_task=h100:8"),
        ({"gres": None, "additional_parameters": {"gpus": 3}}, 3, "hydra.launcher.additional_parameters.gpus=3"),
        ({"gres": "gpu:a100:x:y"}, None, "hydra.launcher.gres=gpu:a100:x:y"),
        ({"gres": None}, 0, "no GPUs: hydra.launcher.gres, gpus_per_node and gpus_per_task are null"),
    ],
)
def test_slurm_target_reads_the_gpus_a_job_requests(fields: dict[str, Any], count: int | None, asked: str) -> None:
    target = slurm_target({"_target_": _LAUNCHER, **fields}, "lem_slurm_gpu")
    assert target == JobTarget("lem_slurm_gpu", asked, count)
    assert JobTarget.from_json(target.to_json()) == target
    assert slurm_target({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, "basic") is None


def test_rules_against_a_request_defer_what_it_cannot_say() -> None:
    def codes(target: JobTarget, *overrides: str) -> dict[str, str]:
        facts = MachineFacts(packages=frozenset({"vllm"}), target=target)
        return {f.code: f.severity for f in validate(compose_config("backend=vllm", *overrides), facts)}

    four, unread = JobTarget("lem_slurm_gpu", "gres=gpu:4", 4), JobTarget("lem_slurm_gpu", "gres=gpu:x:y:z", None)
    none = JobTarget("lem_slurm_cpu", "no GPUs", 0)
    assert codes(four, "backend.tensor_parallel_size=4")["GPUS_REQUESTED"] == "info"
    assert codes(four, "backend.tensor_parallel_size=8")["PARALLELISM_EXCEEDS_GPUS"] == "error"
    assert codes(unread, "backend.tensor_parallel_size=4")["HARDWARE_DEFERRED"] == "warning"
    assert codes(four, "backend.kv_cache_dtype=fp8")["HARDWARE_DEFERRED"] == "warning", "compute capability"
    assert codes(none, "backend.kv_cache_dtype=fp8")["NEEDS_HARDWARE"] == "error", "fp8 on a job without a GPU"
    assert codes(four, "gpus=[0,3]").get("GPU_NOT_VISIBLE") is None
    assert codes(four, "gpus=[4]")["GPU_NOT_VISIBLE"] == "error", "a job of 4 GPUs sees 0..3"
    assert "HARDWARE_DEFERRED" not in codes(four), "the defaults need no deferred rule"


@SUBMITIT
def test_slurm_dry_run_judges_the_gpu_count_against_the_launchers_request(tmp_path: Path) -> None:
    common = ["-m", "hydra/launcher=lem_slurm_gpu", "backend=vllm", "backend.tensor_parallel_size=4", "dry_run=true"]
    enough = run_lem(*common, "hydra.launcher.gres=gpu:4", "backend.kv_cache_dtype=fp8", cwd=tmp_path)
    assert enough.returncode == 0, enough.stderr[-3000:]
    text = " ".join(enough.stderr.split())
    assert "lem: dry run for hydra/launcher=lem_slurm_gpu: nothing is submitted" in text
    assert (
        "INFO [GPUS_REQUESTED] backend.tensor_parallel_size: 4 x 1 (tensor x pipeline) needs 4 GPUs: "
        "hydra/launcher=lem_slurm_gpu requests 4 per job (hydra.launcher.gres=gpu:4)" in text
    )
    (deferred,) = [line for line in enough.stderr.split("WARNING ")[1:] if "HARDWARE_DEFERRED" in line]
    assert "deferred to the job's node: 'fp8': fp8 KV cache needs a GPU of compute capability 8.9" in " ".join(
        deferred.split()
    )
    assert "valid: 0 error(s)" in enough.stderr
    too_few = run_lem(*common, "hydra.launcher.gres=gpu:1", cwd=tmp_path)
    assert too_few.returncode != 0
    line = one_error_line(too_few.stderr)
    assert "needs 4 GPUs but hydra/launcher=lem_slurm_gpu requests 1 per job (hydra.launcher.gres=gpu:1)" in line
    assert "hydra.launcher.gres=gpu:4" in line, "the fix"
    if len(probe_machine().gpus) < 4:
        local = run_lem(*[a for a in common if not a.startswith("hydra/")], cwd=tmp_path)
        assert local.returncode != 0
        assert "needs 4 GPUs but" in one_error_line(local.stderr) and "are visible" in local.stderr
    assert not list(tmp_path.glob("multirun/*/*/.submitit")), "nothing was submitted"


@SUBMITIT
def test_a_slurm_campaign_is_judged_against_the_request_before_submitting(tmp_path: Path) -> None:
    """Not a dry run: the campaign sweeper validates on the login node against what each job will get."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=lem_campaign", "campaign.name=t", f"hydra.sweep.dir={sweep}"]
    run = run_lem(
        *args, "hydra/launcher=lem_slurm_cpu", "backend=vllm", "backend.tensor_parallel_size=2,1", cwd=tmp_path
    )
    assert run.returncode == 2
    assert "grid rejected before running" in run.stderr
    assert "needs 2 GPUs but hydra/launcher=lem_slurm_cpu requests 0 per job" in one_error_line(run.stderr)
    assert not sweep.exists(), "nothing was submitted"
    planned = run_lem(*args, "hydra/launcher=lem_slurm_gpu", "max_output_tokens=4,8", "dry_run=true", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "engine loads: 2 of 2 jobs (no reuse: each SLURM job of hydra/launcher=lem_slurm_gpu loads its own)" in (
        " ".join(planned.stderr.split())
    )


@on_cluster
def test_a_dry_run_with_the_slurm_launcher_submits_nothing(tmp_path: Path, job_name: str) -> None:
    before = _accounted(job_name)
    run = run_lem(*_sweep_args(tmp_path / "sweep", job_name, "backend.batch_size=1,2", "dry_run=true"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("valid: 0 error(s)") == 2, "both jobs were validated here"
    assert "lem dry run: validated configuration" in run.stderr
    assert _accounted(job_name) == before == [], "SLURM never saw a job"
    assert not (tmp_path / "sweep" / ".submitit").exists()
