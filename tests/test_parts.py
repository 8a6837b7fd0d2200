"""Pure parts of the harness: CV and ratio, warmup's CV rule, batch planning, atomic writes, redaction, the schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lem.atomic import install_folder, write_json_atomic
from lem.backends.pytorch.batching import plan_batches
from lem.config.schema import WarmupConfig
from lem.environment import redact_environment
from lem.numbers import coefficient_of_variation, ratio
from lem.results.schema import Distribution, Result
from lem.results.strict import from_dict
from lem.warmup import run_warmup, should_stop


def test_cv() -> None:
    assert coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(0.5)
    assert coefficient_of_variation([4.0]) == coefficient_of_variation([]) == 0.0


def test_ratio_is_none_without_both_parts() -> None:
    assert ratio(3.0, 2) == 1.5
    assert ratio(None, 2) is None and ratio(3.0, None) is None
    assert ratio(3.0, 0) is None and ratio(3.0, -1.0) is None


def test_convergence_stops_where_the_cv_rule_says() -> None:
    config = WarmupConfig(mode="convergence", min_prompts=3, max_prompts=10, target_cv=0.1, window=3)
    latencies = [5.0, 1.0, 1.5, 1.0, 1.05, 1.0, 0.98]
    stops = [n for n in range(len(latencies) + 1) if should_stop(latencies[:n], config)]
    # CV of the last three: n=3 [5,1,1.5] high; n=4 [1,1.5,1] 0.2; n=5 [1.5,1,1.05] 0.19; n=6 [1,1.05,1] 0.023
    assert stops[0] == 6
    assert should_stop([1.0] * 10, config) and should_stop([1.0, 9.0] * 5, config), "max_prompts bounds it"
    assert not should_stop([1.0, 1.0], config), "min_prompts bounds it"


def test_run_warmup_counts_and_reports() -> None:
    calls: list[str] = []
    report = run_warmup(calls.append, ["a", "b"], WarmupConfig(mode="fixed", count=5))
    assert report.prompts == 5 and calls == ["a", "b", "a", "b", "a"] and report.converged is None
    report = run_warmup(calls.append, ["a"], WarmupConfig(enabled=False))
    assert report.prompts == 0 and not report.enabled


@pytest.mark.parametrize("strategy", ["static", "sorted_static", "dynamic", "sorted_dynamic"])
def test_batches_cover_every_prompt_once(strategy: str) -> None:
    lengths = [5, 40, 12, 33, 7, 21, 9, 50, 3, 18]
    batches = plan_batches(lengths, strategy, batch_size=4, max_tokens_per_batch=200, max_new_tokens=10)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert all(len(b) <= 4 for b in batches)


def test_batch_strategies() -> None:
    lengths = [5, 40, 12, 33]
    assert plan_batches(lengths, "static", 2, None, 8) == [[0, 1], [2, 3]]
    assert plan_batches(lengths, "sorted_static", 2, None, 8) == [[1, 3], [2, 0]]
    dynamic = plan_batches(lengths, "sorted_dynamic", 4, 100, 8)  # padded rows x (longest + 8) <= 100
    assert dynamic == [[1, 3], [2, 0]]
    assert plan_batches([500], "dynamic", 4, 10, 8) == [[0]], "a lone prompt always fits"


def test_atomic_write_survives_a_kill_mid_write(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    write_json_atomic(target, {"status": "old"})
    code = (
        f"import os, lem.atomic as a\n"
        f"real = os.replace\n"
        f"os.replace = lambda *args: os.kill(os.getpid(), 9)\n"
        f"a.write_json_atomic(__import__('pathlib').Path({str(target)!r}), {{'status': 'new' * 100000}})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode == -9
    assert json.loads(target.read_text()) == {"status": "old"}
    assert not [p for p in os.listdir(tmp_path) if p != "results.json" and not p.endswith(".tmp")]


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644, "readable by the group, like open() gives"


def test_secrets_are_redacted() -> None:
    env = {
        "HF_TOKEN": "hf_abc",
        "SLURM_JOB_ID": "12",
        "LEM_API_KEY": "k",
        "VLLM_SECRET_X": "s",
        "DB_PASSWORD": "p",
        "CUDA_VISIBLE_DEVICES": "0",
        "HOME": "/root",
        "WANDB_API_KEY": "w",
    }
    recorded = redact_environment(env)
    assert recorded["HF_TOKEN"] == "<redacted>" and recorded["LEM_API_KEY"] == "<redacted>"
    assert recorded["VLLM_SECRET_X"] == "<redacted>" and recorded["SLURM_JOB_ID"] == "12"
    assert recorded["CUDA_VISIBLE_DEVICES"] == "0"
    assert "HOME" not in recorded and "DB_PASSWORD" not in recorded and "WANDB_API_KEY" not in recorded
    assert "hf_abc" not in json.dumps(recorded)


def test_result_schema_round_trip_is_strict() -> None:
    minimal = {
        "result_schema_version": "1.0.0",
        "lem_version": "0",
        "status": "failed",
        "created_at": "now",
        "config": {},
        "config_hash": "x",
        "findings": [],
        "environment": {},
        "phases_s": {"validate": 0.1},
        "backend": {},
        "metrics": None,
        "energy": None,
        "quality": None,
        "error": {"phase": "prepare", "type": "LemError", "message": "m"},
    }
    result = from_dict(Result, minimal)
    assert result.error is not None and result.error.phase == "prepare"
    with pytest.raises(ValueError, match="unknown keys"):
        from_dict(Result, {**minimal, "surprise": 1})
    with pytest.raises(ValueError, match="missing"):
        from_dict(Result, {k: v for k, v in minimal.items() if k != "status"})
    with pytest.raises(ValueError, match=r"result\.error\.message: missing"):
        from_dict(Result, {**minimal, "error": {"phase": "prepare", "type": "LemError"}})
    with pytest.raises(TypeError, match="expected int"):
        from_dict(Distribution, {"mean": 1, "p50": 1, "p95": 1, "p99": 1, "count": "3"})


def _writes(marker: str, calls: list[str], crash: bool = False) -> Callable[[Path], None]:
    def build(staging: Path) -> None:
        calls.append(staging.name)
        (staging / "data").write_text(str(len(calls)))
        if crash:
            raise KeyboardInterrupt
        (staging / marker).write_text("done")

    return build


def test_install_folder_builds_once_and_keeps_a_complete_folder(tmp_path: Path) -> None:
    final, calls = tmp_path / "thing", []
    assert install_folder(final, _writes("ok", calls), marker="ok") is True
    assert install_folder(final, _writes("ok", calls), marker="ok") is False and len(calls) == 1
    assert install_folder(final, _writes("ok", calls), marker="ok", force=True) is True
    assert (final / "data").read_text() == "2" and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".thing.lock", "thing"]


def test_install_folder_crash_leaves_the_old_folder_or_none(tmp_path: Path) -> None:
    final, calls = tmp_path / "thing", []
    with pytest.raises(KeyboardInterrupt):
        install_folder(final, _writes("ok", calls, crash=True), marker="ok")
    assert not final.exists() and sorted(p.name for p in tmp_path.iterdir()) == [".thing.lock"]
    install_folder(final, _writes("ok", calls), marker="ok")
    with pytest.raises(KeyboardInterrupt):
        install_folder(final, _writes("ok", calls, crash=True), marker="ok", force=True)
    assert (final / "data").read_text() == "2", "the complete folder survives a failed rebuild"
    with pytest.raises(RuntimeError, match="wrote no ok"):
        install_folder(tmp_path / "other", lambda staging: None, marker="ok")
    (tmp_path / ".thing.staging-dead").mkdir()
    (final / "ok").unlink()  # an incomplete folder is rebuilt, and a crashed build's staging folder removed
    install_folder(final, _writes("ok", calls), marker="ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.lock", ".thing.lock", "thing"]


def test_install_folder_concurrent_processes_build_once(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from lem.atomic import install_folder\n"
        "def build(staging):\n"
        "    time.sleep(0.5); (staging / 'ok').write_text('x')\n"
        "    with open(sys.argv[2], 'a') as log: log.write('built\\n')\n"
        "install_folder(Path(sys.argv[1]), build, marker='ok')\n"
    )
    log = tmp_path / "log"
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "thing"), str(log)]) for _ in range(3)]
    assert [p.wait() for p in processes] == [0, 0, 0]
    assert log.read_text() == "built\n"
