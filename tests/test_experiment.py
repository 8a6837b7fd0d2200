"""One experiment end to end on the built-in tiny model: the real command, real transformers, real Zeus."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import compose_config, one_error_line, result_files, run_lem
from zeus_seams import SimulatedGpu, fake_rapl, simulated_gpus

from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.harness import run_experiment
from lem.results.reader import read_result

pytestmark = pytest.mark.slow
QUICK = ["num_input_prompts=12", "max_output_tokens=16", "warmup.max_prompts=4", "baseline.duration_s=0.5"]


def test_default_experiment_end_to_end(tmp_path: Path, lem_cache: Path) -> None:
    started = time.monotonic()
    run = run_lem(cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-3000:]
    assert elapsed < 60, f"default experiment took {elapsed:.1f} s"
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "ok" and result.metrics is not None and result.energy is not None
    assert result.metrics.num_requests == 100 and result.metrics.output_tokens == 100 * 64, "fixed length"
    assert result.metrics.input_tokens > 100
    assert list(result.phases_s) == [
        "validate",
        "environment",
        "prepare",
        "baseline",
        "load",
        "warmup",
        "measure",
        "metrics",
    ]
    # This machine has no GPU and no RAPL: nothing is measured, the host estimate is labelled and kept apart.
    assert result.energy.measured_energy_j is None and result.energy.j_per_output_token is None
    assert [d.source for d in result.energy.domains] == ["estimate"]
    assert result.energy.estimated_energy_j and result.energy.estimate_model is not None
    assert result.quality is not None and "no_measured_energy" in result.quality.flags
    assert result.quality.baseline_skipped_reason and result.quality.warmup.prompts >= 3
    frame = pd.read_parquet(path.parent / "timeseries.parquet")
    assert len(frame) == result.quality.timeseries_samples >= 2 and "host_cpu_util_pct" in frame
    assert (path.parent / ".hydra" / "config.yaml").exists()
    assert "J / output token" not in run.stdout and "ESTIMATE" in run.stdout, "the summary labels the estimate"


def test_measured_energy_through_zeus_seams_to_the_joule(tmp_path: Path) -> None:
    """GPU (fake NVML counter, 100 W) and CPU/DRAM (fake RAPL, 50 W / 5 W): total, net and J/token exact."""
    host = socket.gethostname()
    gpu = SimulatedGpu(power_w=100.0)
    started = time.time()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "baselines.json").write_text(
        json.dumps(
            {
                f"{gpu.uuid}|{host}:cpu0": {
                    "power_w": {"gpu0": 40.0, "cpu0": 20.0, "dram0": 2.0},
                    "power_cv": {"gpu0": 0.01},
                    "measured_at": time.time() - 30,
                    "duration_s": 5.0,
                }
            }
        )
    )
    config = compose_config(
        *QUICK,
        f"cache_dir={tmp_path / 'cache'}",
        "baseline.cache_ttl_seconds=3600",
        "thermal.enabled=true",
        "thermal.timeout_s=0.3",
        "thermal.poll_interval_s=0.1",
    )
    with simulated_gpus(gpu), fake_rapl(tmp_path / "powercap", package_w=50.0, dram_w=5.0):
        result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    elapsed_s = time.time() - started
    assert result.status == "ok" and result.energy is not None and result.metrics is not None
    window_s = result.metrics.duration_s
    domains = {d.domain: d for d in result.energy.domains}
    assert set(domains) == {"gpu0", "cpu0", "dram0"} and {d.source for d in domains.values()} == {"counter"}
    assert domains["gpu0"].energy_j == pytest.approx(100.0 * window_s, abs=1.0)
    assert domains["gpu0"].net_energy_j == pytest.approx(60.0 * window_s, abs=1.0)
    assert domains["cpu0"].net_energy_j == pytest.approx(30.0 * window_s, abs=1.0)
    assert domains["dram0"].net_energy_j == pytest.approx(3.0 * window_s, abs=1.0)
    total = sum(d.energy_j for d in domains.values())
    assert result.energy.measured_energy_j == pytest.approx(total)
    assert result.energy.measured_energy_j == pytest.approx(155.0 * window_s, abs=1.5)
    assert result.energy.j_per_output_token == pytest.approx(total / result.metrics.output_tokens)
    assert result.energy.estimated_energy_j is None, "counters present: nothing is estimated"
    assert result.quality is not None and result.quality.baseline_from_cache
    assert result.quality.baseline_age_s is not None and 30 <= result.quality.baseline_age_s <= 30 + elapsed_s
    assert result.quality.temperature_start_c == {"gpu0": 40.0}
    # the cached baseline has no idle temperature, so the floor cannot be checked and says so
    assert result.quality.thermal_floor_reached is None and "thermal_floor" in result.phases_s
    assert result.energy.peak_power_w == 100.0
    frame = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert (frame["gpu0_power_w"] == 100.0).all()
    on_disk = read_result(tmp_path / "results.json")
    assert on_disk.energy == result.energy


@pytest.mark.parametrize(
    ("args", "files", "phase", "message"),
    [
        (["model=/nonexistent/model"], {}, "prepare", r"model='/nonexistent/model': no such model folder"),
        (["dataset.name=PROMPTS/empty.jsonl"], {"empty.jsonl": ""}, "prepare", r"dataset.name=.*empty.jsonl"),
        (["num_input_prompts=0"], {}, "validate", r"num_input_prompts: 0 must be >= 1"),
        (
            ["dataset.name=PROMPTS/p.csv", "dataset.column=body"],
            {"p.csv": "text,id\nhello there,1\n"},
            "prepare",
            r"body",
        ),
    ],
)
def test_bad_input_fails_fast_with_failed_result(
    args: list[str], files: dict[str, str], phase: str, message: str, tmp_path: Path, lem_cache: Path
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [a.replace("PROMPTS", str(tmp_path)) for a in args]
    run = run_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode != 0 and "Traceback" not in run.stderr
    error_line = one_error_line(run.stderr)
    assert re.search(message, error_line), error_line
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "failed" and result.error is not None and result.error.phase == phase
