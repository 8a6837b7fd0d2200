"""Campaigns through the real command: order, failure isolation, resume, grid rejection; the plugin's boundaries."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_lem, start_lem
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_plugins.lem_campaign.sweeper import expand_grid
from lem.campaign.plan import plan_jobs
from lem.errors import LemError

POINTS = [["backend.batch_size=1"], ["backend.batch_size=2"]]
QUICK = [
    "num_input_prompts=4",
    "max_output_tokens=4",
    "warmup.mode=fixed",
    "warmup.count=1",
    "baseline.method=off",
    "timeseries.enabled=false",
]


def _campaign(sweep_dir: Path, *extra: str) -> list[str]:
    return [
        "-m",
        "hydra/sweeper=lem_campaign",
        "backend.batch_size=1,2",
        "campaign.name=t",
        f"hydra.sweep.dir={sweep_dir}",
        *QUICK,
        *extra,
    ]


def _results(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]


def _executed_order(sweep_dir: Path) -> list[int]:
    """Point index of each job in the order its results.json was written."""
    paths = sorted(sweep_dir.glob("*/results.json"), key=lambda p: p.stat().st_mtime_ns)
    return [json.loads(p.read_text())["config"]["campaign"]["point_index"] for p in paths]


def test_plan_orders() -> None:
    letters = "AB"

    def order(structure: str, seed: int = 0) -> str:
        return "".join(letters[j.point_index] for j in plan_jobs(POINTS, 3, structure, seed))

    assert order("interleaved") == "ABABAB"
    assert order("grouped") == "AAABBB"
    assert order("shuffled", 7) == order("shuffled", 7)
    assert sorted(order("shuffled", 7)) == list("AAABBB")
    many = [["x=1"], ["x=2"], ["x=3"], ["x=4"], ["x=5"]]
    assert [j.point_index for j in plan_jobs(many, 2, "shuffled", 1)] != [
        j.point_index for j in plan_jobs(many, 2, "shuffled", 2)
    ]
    assert [j.position for j in plan_jobs(POINTS, 3, "grouped", 0)] == list(range(6))
    assert plan_jobs(POINTS, 3, "grouped", 0)[1].job_id == "p000_c01"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("structure", "expected"), [("interleaved", [0, 1, 0, 1, 0, 1]), ("grouped", [0, 0, 0, 1, 1, 1])]
)
def test_campaign_runs_in_order_and_records_its_place(
    structure: str, expected: list[int], tmp_path: Path, lem_cache: Path
) -> None:
    sweep = tmp_path / "sweep"
    run = run_lem(
        *_campaign(sweep, "campaign.cycles=3", f"campaign.structure={structure}"),
        cwd=tmp_path,
        env={"LEM_CACHE_DIR": str(lem_cache)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert _executed_order(sweep) == expected
    results = _results(sweep)
    assert all(r["status"] == "ok" for r in results) and len(results) == 6
    positions = sorted((r["config"]["campaign"]["position"], r["config"]["campaign"]["point_index"]) for r in results)
    assert [p for _, p in positions] == expected
    first = results[0]["config"]["campaign"]
    assert first["name"] == "t" and first["point"] in ("backend.batch_size=1", "backend.batch_size=2")
    assert "6 ok" in run.stderr


def test_shuffled_plan_is_reproducible(tmp_path: Path) -> None:
    def listing(seed: int) -> list[str]:
        run = run_lem(
            *_campaign(
                tmp_path / "s",
                "backend.max_tokens_per_batch=100,200,300",
                "campaign.cycles=2",
                "campaign.structure=shuffled",
                f"campaign.seed={seed}",
                "dry_run=true",
            ),
            cwd=tmp_path,
            env={"COLUMNS": "200"},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return [line.split("│")[3].strip() for line in run.stderr.splitlines() if line.count("│") > 5]

    first, again, other = listing(3), listing(3), listing(4)
    assert len(first) == 12 and first == again and first != other
    assert not (tmp_path / "s").exists(), "a dry run launches nothing"


def test_dry_run_counts_engine_loads_in_run_order(tmp_path: Path) -> None:
    """Interleaved points with different engines reload at every job, and the plan says what grouped would load."""

    def plan(*extra: str) -> str:
        args = [a for a in _campaign(tmp_path / "s", "dry_run=true", "campaign.cycles=3") if "batch_size" not in a]
        run = run_lem(*args, *extra, cwd=tmp_path, env={"COLUMNS": "200"})
        assert run.returncode == 0, run.stderr[-2000:]
        return " ".join(run.stderr.split())

    precisions = "fp_precision=float32,bfloat16"
    assert "engine loads: 6 of 6 jobs (reuse on; " in plan(precisions)
    assert "campaign.structure=grouped would load 2" in plan(precisions)
    assert "engine loads: 2 of 6 jobs (reuse on; " in plan(precisions, "campaign.structure=grouped")
    assert "engine loads: 1 of 6 jobs" in plan("backend.batch_size=1,2"), "the batch size is generate's"
    assert "engine loads: 6 of 6 jobs (reuse off; " in plan("backend.batch_size=1,2", "backend.reuse=false")


def test_each_dry_run_job_says_whether_it_would_reuse_the_previous_engine(tmp_path: Path) -> None:
    run = run_lem("-m", "backend=vllm", "random_seed=1,1,2", "dry_run=true", cwd=tmp_path, env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr[-2000:]
    engines = [line.split("│")[2].strip() for line in run.stderr.splitlines() if "engine (planned)" in line]
    assert [e.split("; ")[1] for e in engines] == [
        "loads",
        "reuses the previous job's engine",
        "loads (the previous job's engine differs)",
    ]
    assert engines[0].split(";")[0] == engines[1].split(";")[0] != engines[2].split(";")[0]
    trt = run_lem(
        "-m", "backend=tensorrt", "fp_precision=float16", "max_output_tokens=4,8", "dry_run=true", cwd=tmp_path
    )
    assert trt.returncode == 0 and trt.stderr.count("WARNING [ENGINE_FOLLOWS_WORKLOAD] backend.max_seq_len") == 2


@pytest.mark.slow
def test_failing_point_is_isolated(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [a for a in _campaign(sweep) if a != "backend.batch_size=1,2"]
    run = run_lem(*args, "model=lem-tiny-llama,/nonexistent/model", cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode == 1
    assert "1 failed, 1 ok" in run.stderr and "Traceback" not in run.stderr
    statuses = sorted(r["status"] for r in _results(sweep))
    assert statuses == ["failed", "ok"]


def test_grid_with_an_error_finding_is_rejected_before_anything_runs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [a for a in _campaign(sweep) if a != "backend.batch_size=1,2"]
    run = run_lem(*args, "backend.batch_size=1,0", cwd=tmp_path)
    assert run.returncode == 2 and "grid rejected before running" in run.stderr and "backend.batch_size" in run.stderr
    assert not list(sweep.glob("*/results.json"))


@pytest.mark.slow
def test_kill_then_resume_runs_only_the_missing_jobs(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "sweep"
    args = _campaign(sweep, "campaign.cycles=2", "campaign.config_gap_seconds=2", "campaign.cycle_gap_seconds=2")
    env = {"LEM_CACHE_DIR": str(lem_cache), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lem", *args],
        cwd=tmp_path,
        env={**__import__("os").environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len([r for r in _results(sweep) if r["status"] == "ok"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/results.json")}
    assert 2 <= len(before) < 4, before
    resumed = run_lem(*args, "campaign.resume=true", cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/results.json")}
    assert len(after) == 4 and all(r["status"] == "ok" for r in _results(sweep))
    rerun = [name for name in after if before.get(name) != after[name]]
    assert len(rerun) == 4 - len(before), "only the missing jobs ran"
    assert f"{len(before)} skipped" in resumed.stderr
    changed = run_lem(*args, "campaign.resume=true", "max_output_tokens=5", cwd=tmp_path, env=env)
    assert changed.returncode == 0 and "skipped" not in changed.stderr, "a changed config hash reruns every job"


def test_grid_expands_like_hydras_basic_sweeper() -> None:
    parser = OverridesParser.create()
    params = ["a=1,2", "b=x", "c=range(0,2)"]
    constant, points = expand_grid(parser.parse_overrides([*params, "d=5", "b=y,z"]))
    assert constant == ["d=5"]
    assert points[:3] == [["a=1", "b=y", "c=0"], ["a=1", "b=y", "c=1"], ["a=1", "b=z", "c=0"]] and len(points) == 8
    constant, points = expand_grid(parser.parse_overrides([*params, "a=3"]))
    assert constant == ["a=3", "b=x"] and points == [["c=0"], ["c=1"]], "the command line wins over params"
    assert expand_grid([]) == ([], [[]])
    with pytest.raises(LemError, match="choice and range sweeps"):
        expand_grid(parser.parse_overrides(["a=interval(0,1)"]))


def _sources(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((REPO / package).rglob("*.py"))]


def test_no_module_names_hydras_internals() -> None:
    offenders = [
        str(p.relative_to(REPO)) for p in _sources("lem", "hydra_plugins") if "hydra._internal" in p.read_text()
    ]
    assert not offenders, f"hydra._internal named in {offenders}: use Hydra's public API"


def _imported_modules(path: Path) -> list[str]:
    """Every module `path` imports: import statements (lazy ones too) and import_module/__import__ of a literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append(node.args[0].value)
    return found


def test_lem_never_imports_the_plugin() -> None:
    offenders = [
        f"{p.relative_to(REPO)}: {module}"
        for p in _sources("lem")
        for module in _imported_modules(p)
        if module.split(".")[0] == "hydra_plugins"
    ]
    assert not offenders, f"{offenders}: the plugin imports lem, never the other way"
    probe = (
        "import sys, lem.app, lem.config.store; lem.config.store.register_configs(); "
        "print(sorted(m for m in sys.modules if m.startswith('hydra_plugins')))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]", run.stdout


def test_hydra_finds_the_plugin_by_its_own_scan(tmp_path: Path) -> None:
    probe = (
        "from hydra.core.config_store import ConfigStore; from hydra.core.plugins import Plugins; "
        "from hydra.plugins.sweeper import Sweeper; "
        "print([c.__name__ for c in Plugins.instance().discover(Sweeper)], "
        "'lem_campaign.yaml' in ConfigStore.instance().list('hydra/sweeper'))"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "'CampaignSweeper'" in run.stdout and run.stdout.strip().endswith("True"), run.stdout


@pytest.mark.slow
def test_interrupted_job_is_rerun_on_resume(tmp_path: Path, lem_cache: Path) -> None:
    """SIGTERM during a job's measured window: exit 143, that job `interrupted`; resume reruns it and only it."""
    sweep = tmp_path / "sweep"
    args = [a for a in _campaign(sweep) if a not in ("backend.batch_size=1,2", "num_input_prompts=4")]
    args += ["backend.batch_size=1", "num_input_prompts=4,400"]
    process = start_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    log = sweep / "p001_c00" / "lem.log"
    deadline = time.monotonic() + 120
    while not (log.is_file() and "phase: measure" in log.read_text()) and time.monotonic() < deadline:
        assert process.poll() is None, "the campaign ended before it was interrupted"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "Traceback" not in stderr, stderr[-2000:]
    assert [r["status"] for r in _results(sweep)] == ["ok", "interrupted"]
    first = (sweep / "p000_c00" / "results.json").stat().st_mtime_ns
    resumed = run_lem(*args, "campaign.resume=true", cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["status"] for r in _results(sweep)] == ["ok", "ok"] and "1 skipped" in resumed.stderr
    assert (sweep / "p000_c00" / "results.json").stat().st_mtime_ns == first, "the finished job is not rerun"


def test_campaign_params_take_escape_hatch_keys_as_users_type_them(tmp_path: Path) -> None:
    """`hydra.sweeper.params` in a campaign file names `backend.extra.<key>` without Hydra's `++`, as the command line
    does; the key reaches each job's config."""
    (tmp_path / "conf" / "campaign").mkdir(parents=True)
    (tmp_path / "conf" / "campaign" / "hatch.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /hydra/sweeper: lem_campaign\n"
        "campaign:\n  name: hatch\n  cycles: 1\n"
        "hydra:\n  sweeper:\n    params:\n      backend.extra.repetition_penalty: 1.0,1.1\n"
    )
    run = run_lem(
        "-m",
        "--config-dir",
        str(tmp_path / "conf"),
        "+campaign=hatch",
        "dry_run=true",
        cwd=tmp_path,
        env={"COLUMNS": "200"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "backend.extra.repetition_penalty=1.0" in run.stderr and "backend.extra.repetition_penalty=1.1" in run.stderr
