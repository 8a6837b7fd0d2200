"""Node power through IPMI (energy.node): a fake `ipmitool` first on PATH answers as the real one does, or fails."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import compose_config, one_error_line, result_files, run_lem
from zeus_seams import fake_rapl

from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.energy.node import NodePowerError, NodePowerSampler, parse_power_reading, probe_node_power
from lem.harness import run_experiment
from lem.report.render import write_report
from lem.results.reader import read_result

#: `ipmitool dcmi power reading` as ipmitool 1.8 prints it (lib/ipmi_dcmi.c, ipmi_dcmi_pwr_rd).
READING = """
    Instantaneous power reading:                   {watts} Watts
    Minimum during sampling period:                 96 Watts
    Maximum during sampling period:                504 Watts
    Average power reading over sample period:      304 Watts
    IPMI timestamp:                           Wed Dec  2 16:00:00 2026
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   {state}

"""
NO_DEVICE = (
    "Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: No such file or directory\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session"
)
QUICK = ["num_input_prompts=4", "max_output_tokens=8", "warmup.max_prompts=2", "baseline.duration_s=1.5"]


def fake_ipmitool(folder: Path, body: str) -> dict[str, str]:
    """An `ipmitool` shell script with `body` in `folder`; returns the PATH that puts it first."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ipmitool"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def answering(folder: Path, watts: int, state: str = "activated") -> dict[str, str]:
    return fake_ipmitool(folder, f"cat <<'EOF'\n{READING.format(watts=watts, state=state)}EOF")


def failing(folder: Path) -> dict[str, str]:
    return fake_ipmitool(folder, f"echo '{NO_DEVICE}' >&2\nexit 1")


def hanging(folder: Path) -> dict[str, str]:
    return fake_ipmitool(folder, "exec sleep 60")


def without_ipmitool() -> dict[str, str]:
    """This PATH without any folder holding an ipmitool."""
    folders = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "ipmitool").exists()]
    return {"PATH": os.pathsep.join(folders)}


def test_parses_the_real_output() -> None:
    reading = parse_power_reading(READING.format(watts=400, state="activated"))
    assert reading.power_w == 400.0 and reading.activated
    assert not parse_power_reading(READING.format(watts=0, state="deactivated")).activated
    # ipmitool 1.8.19 prints the timestamp without its newline: the sampling period follows on the same line
    joined = READING.format(watts=235, state="activated").replace("2026\n    Sampling", "2026    Sampling")
    assert parse_power_reading(joined).power_w == 235.0
    with pytest.raises(NodePowerError, match=r"no instantaneous power reading.*DCMI request failed"):
        parse_power_reading("\n    DCMI request failed because: Invalid data field in request (cc)\n")


def test_probe_says_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert probe_node_power("off") == (False, None)
    cases = [
        (answering(tmp_path / "ok", 400), None),
        (answering(tmp_path / "off", 0, "deactivated"), "deactivated"),
        (failing(tmp_path / "failing"), "exited with code 1: Could not open device at /dev/ipmi0"),
        (without_ipmitool(), "ipmitool is not installed"),
    ]
    for env, why in cases:
        monkeypatch.setenv("PATH", env["PATH"])
        for mode in ("ipmi", "auto"):
            available, reason = probe_node_power(mode)
            assert available is (why is None) and (reason is None if why is None else why in reason), reason
    monkeypatch.setenv("PATH", hanging(tmp_path / "hanging")["PATH"])
    started = time.monotonic()
    available, reason = probe_node_power("ipmi", timeout_s=0.5)
    assert not available and "did not answer within 0.5 s (timeout)" in reason
    assert time.monotonic() - started < 3.0


def test_sampler_integrates_varying_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The BMC reads a ramp of 100 W/s from 100 W: the integral between two instants follows it."""
    origin_s = time.time()
    ramp = f'w=$(awk -v t="$(date +%s.%N)" \'BEGIN {{ printf "%d", 100 + 100 * (t - {origin_s}) }}\')'
    reading = READING.format(watts="$w", state="activated")
    monkeypatch.setenv("PATH", fake_ipmitool(tmp_path, f"{ramp}\ncat <<EOF\n{reading}EOF")["PATH"])
    sampler = NodePowerSampler(interval_s=0.1).start()
    time.sleep(2.2)
    sampler.stop()
    assert sampler.error is None
    assert sampler.achieved_rate_hz() == pytest.approx(10.0, rel=0.3)
    start_s, end_s = origin_s + 0.5, origin_s + 2.0
    expected_j = 100 * 1.5 + 100 * (2.0**2 - 0.5**2) / 2  # ∫ 100 + 100 t dt from 0.5 to 2 s
    assert sampler.energy_j(start_s, end_s) == pytest.approx(expected_j, rel=0.03)
    assert sampler.mean_power_w(start_s, end_s) == pytest.approx(expected_j / 1.5, rel=0.03)
    assert 12 <= sampler.samples_between(start_s, end_s) <= 16


def test_a_hanging_bmc_ends_the_sampling_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third call hangs: the call times out, sampling ends with the error, and stop() returns."""
    calls = tmp_path / "calls"
    reading = READING.format(watts=400, state="activated")
    body = f"echo x >> {calls}\n[ $(wc -l < {calls}) -ge 3 ] && exec sleep 60\ncat <<'EOF'\n{reading}EOF"
    monkeypatch.setenv("PATH", fake_ipmitool(tmp_path / "bin", body)["PATH"])
    sampler = NodePowerSampler(interval_s=0.05, timeout_s=0.5).start()
    time.sleep(1.0)
    started = time.monotonic()
    sampler.stop()
    assert time.monotonic() - started < 1.0, "stop() waits at most for the call in flight"
    assert sampler.error is not None and "did not answer within 0.5 s (timeout)" in str(sampler.error)
    assert sampler.samples_between(0, time.time()) == 2


@pytest.mark.slow
def test_node_power_beside_simulated_rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RAPL 30 W package + 6 W DRAM, the BMC 400 W: a node figure of 400 W kept out of the measured energy, with the
    rest of the node beside it; a cached baseline without a node power is measured again."""
    monkeypatch.setenv("PATH", answering(tmp_path / "bin", 400)["PATH"])
    job_dir = tmp_path / "sweep" / "0"
    job_dir.mkdir(parents=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    host = socket.gethostname()
    stale = {"power_w": {"cpu0": 30.0, "dram0": 6.0}, "power_cv": {}, "measured_at": time.time(), "duration_s": 5.0}
    (cache / "baselines.json").write_text(json.dumps({f"{host}:cpu0|{host}:node": stale}))
    config = compose_config(*QUICK, "energy.node=ipmi", f"cache_dir={cache}", "baseline.method=cache")
    with fake_rapl(tmp_path / "powercap", package_w=30.0, dram_w=6.0):
        result = run_experiment(config, validate(config, probe_machine()), job_dir)
    energy, quality = result.energy, result.quality
    assert result.status == "ok" and energy is not None and quality is not None and result.metrics is not None
    window_s = result.metrics.duration_s
    node = energy.node
    assert node is not None and energy.node_skipped_reason is None
    assert node.source == "power_integration" and node.sensor == "ipmitool dcmi power reading"
    assert node.energy_j == pytest.approx(400.0 * window_s, rel=0.02) and node.avg_power_w == pytest.approx(400.0)
    assert quality.baseline_from_cache is False, "the cached baseline had no node power"
    assert node.baseline_power_w == pytest.approx(400.0) and node.net_energy_j == pytest.approx(0.0, abs=1.0)
    assert {d.domain for d in energy.domains} == {"cpu0", "dram0"}, "the node is no domain"
    measured_j = sum(d.energy_j for d in energy.domains)
    assert energy.measured_energy_j == pytest.approx(measured_j), "the node is not in the total"
    assert node.rest_of_node_j == pytest.approx(node.energy_j - energy.measured_energy_j)
    # about 1 Hz; the last reading, taken when the window closes, comes sooner
    assert node.sample_rate_hz is not None and 0.8 <= node.sample_rate_hz <= 1.6
    assert not any("node" in flag for flag in quality.flags)
    cached = json.loads((cache / "baselines.json").read_text())[f"{host}:cpu0|{host}:node"]
    assert cached["node_power_w"] == pytest.approx(400.0)
    assert read_result(job_dir / "results.json").energy == energy
    report = write_report(tmp_path / "sweep", resamples=100, seed=0)
    (row,) = report.sweep.table.to_dict("records")
    assert row["node_energy_j"] == node.energy_j and row["rest_of_node_j"] == node.rest_of_node_j
    summary = (tmp_path / "sweep" / "report" / "summary.md").read_text()
    assert "| node energy (BMC) | J |" in summary and "| rest of node (node − measured) | J |" in summary


@pytest.mark.slow
def test_a_bmc_failing_mid_run_is_flagged_and_leaves_no_node_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe and the first reading answer, then the BMC goes away: the run ends ok, without a node figure."""
    calls = tmp_path / "calls"
    reading = READING.format(watts=400, state="activated")
    body = f"echo x >> {calls}\n[ $(wc -l < {calls}) -ge 3 ] && echo '{NO_DEVICE}' >&2 && exit 1\n"
    monkeypatch.setenv("PATH", fake_ipmitool(tmp_path / "bin", f"{body}cat <<'EOF'\n{reading}EOF")["PATH"])
    config = compose_config(*QUICK, "energy.node=ipmi", f"cache_dir={tmp_path / 'cache'}")
    result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    assert result.status == "ok" and result.energy is not None and result.quality is not None
    assert result.energy.node is None and "node_power_failed" in result.quality.flags
    reason = result.energy.node_skipped_reason
    assert reason is not None and reason.startswith("node power sampling failed: `ipmitool dcmi power reading` exited")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_env", "message"),
    [
        (lambda folder: answering(folder, 0, "deactivated"), "power reading state as deactivated"),
        (failing, "exited with code 1: Could not open device at /dev/ipmi0"),
        (hanging, r"did not answer within 5 s \(timeout\)"),
        (lambda _folder: without_ipmitool(), "ipmitool is not installed"),
    ],
    ids=["deactivated", "failing", "hanging", "missing"],
)
def test_ipmi_mode_stops_before_loading(
    make_env: Callable[[Path], dict[str, str]], message: str, tmp_path: Path, lem_cache: Path
) -> None:
    started = time.monotonic()
    env = {**make_env(tmp_path / "bin"), "LEM_CACHE_DIR": str(lem_cache)}
    run = run_lem(*QUICK, "energy.node=ipmi", cwd=tmp_path, env=env, timeout=120)
    assert run.returncode != 0 and time.monotonic() - started < 60
    line = one_error_line(run.stderr)
    assert line.startswith("lem: error: energy.node='ipmi': ") and "energy.node=auto" in line, line
    assert re.search(message, line), line
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "failed" and result.error is not None and result.error.phase == "environment"
    assert "load" not in result.phases_s and "prepare" not in result.phases_s, "nothing loaded"


@pytest.mark.slow
def test_auto_mode_runs_on_and_says_why(tmp_path: Path, lem_cache: Path) -> None:
    env = {**answering(tmp_path / "bin", 0, "deactivated"), "LEM_CACHE_DIR": str(lem_cache)}
    run = run_lem(*QUICK, "energy.node=auto", cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = result_files(tmp_path)
    energy = read_result(path).energy
    assert energy is not None and energy.node is None
    assert energy.node_skipped_reason is not None and "deactivated" in energy.node_skipped_reason
    assert "node (BMC)" in run.stdout and "unavailable" in run.stdout
