"""Searches through the real command and real Optuna: trials, kill and resume, re-queued trials, failures, the
report's front; the search space parser; the impact figures and the config hash; the plugin's boundaries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO, compose_config, run_lem
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from lem.config.identity import config_hash
from lem.config.schema import ImpactConfig
from lem.errors import LemError
from lem.impact import impact_figures
from lem.results.reader import read_job
from lem.results.schema import Distribution, EnergyMetrics, Metrics, Result
from lem.results.strict import from_dict
from lem.search.space import parse_space

QUICK = ["num_input_prompts=8", "max_output_tokens=8", "warmup.mode=fixed", "warmup.count=1", "baseline.method=off"]
STUDY = "energy_pareto"


def _search(sweep_dir: Path, *extra: str) -> list[str]:
    return ["-m", "+search=energy_pareto", "hydra.sweeper.n_trials=3", *QUICK, f"hydra.sweep.dir={sweep_dir}", *extra]


def _trials(sweep_dir: Path, name: str = STUDY) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{sweep_dir / 'study.db'}"
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _completed(sweep_dir: Path) -> list[optuna.trial.FrozenTrial]:
    return [t for t in _trials(sweep_dir) if t.state == TrialState.COMPLETE]


def _start(args: list[str], cwd: Path, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEM_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lem", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _kill_when(process: subprocess.Popen[bytes], ready: object, timeout_s: float = 180) -> None:
    """SIGKILL `process` as soon as `ready()` is true."""
    deadline = time.monotonic() + timeout_s
    while not ready():  # type: ignore[operator]
        assert process.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting to kill the search"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


# --- real searches ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_search_runs_its_trials_continues_and_reports_the_front(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "search"
    env = {"LEM_CACHE_DIR": str(lem_cache)}
    run = run_lem(*_search(sweep), cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2"], "one folder per trial number"
    assert [read_job(sweep / str(n)).status for n in range(3)] == ["ok", "ok", "ok"]
    trials = _completed(sweep)
    assert [t.number for t in trials] == [0, 1, 2]
    for trial in trials:
        result = read_job(sweep / str(trial.number)).result
        assert result is not None and result.energy is not None and result.metrics is not None
        assert trial.user_attrs["energy_source"] == "estimate", "no counter here: the estimate, marked as such"
        assert trial.values == [result.energy.estimated_j_per_output_token, result.metrics.output_tokens_per_s]
        chosen = {k: str(v) for k, v in trial.params.items()}
        assert str(result.config["backend"]["batch_size"]) == chosen["backend.batch_size"]
    assert "3 completed, 0 failed" in run.stderr and "Pareto front" in run.stderr and "ESTIMATE" in run.stderr

    written = {n: (sweep / str(n) / "results.json").stat().st_mtime_ns for n in range(3)}
    again = run_lem(*_search(sweep), cwd=tmp_path, env=env)
    assert again.returncode == 0 and "0 trial(s) to run" in again.stderr, again.stderr[-2000:]
    assert {n: (sweep / str(n) / "results.json").stat().st_mtime_ns for n in range(3)} == written
    other = run_lem(*_search(sweep, "max_output_tokens=9"), cwd=tmp_path, env=env)
    assert other.returncode == 2 and "was run with other settings" in other.stderr, other.stderr[-2000:]

    report = run_lem(
        str(sweep), "--require", "output_tokens_per_s>=1", "--require", "output_tokens_per_s>=1e12",
        cwd=tmp_path, env=env, module="lem.report",
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    assert "3 job(s)" in report.stdout and "Pareto front (ESTIMATE J/token vs throughput): #" in report.stdout
    assert "output_tokens_per_s>=1 (ESTIMATE): 3 of 3 configuration(s) meet it; the cheapest is #" in report.stdout
    assert "output_tokens_per_s>=1e12 (ESTIMATE): no configuration meets it" in report.stdout
    markdown = (sweep / "report" / "summary.md").read_text()
    assert "## Pareto front: J / output token (ESTIMATE) against throughput" in markdown
    assert (sweep / "report" / "pareto_throughput.png").stat().st_size > 5_000


@pytest.mark.slow
def test_killed_after_one_trial_the_search_finishes_without_rerunning_it(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "search"
    first = sweep / "0" / "results.json"
    process = _start(_search(sweep), tmp_path, lem_cache)
    _kill_when(process, lambda: read_job(sweep / "0").status == "ok")
    finished = first.stat().st_mtime_ns
    resumed = run_lem(*_search(sweep), cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert first.stat().st_mtime_ns == finished, "the completed trial is not run again"
    completed = _completed(sweep)
    assert len(completed) == 3 and completed[0].number == 0
    assert all(read_job(sweep / str(t.number)).status == "ok" for t in completed)
    assert "3 completed" in resumed.stderr


@pytest.mark.slow
def test_a_trial_left_running_is_marked_failed_and_requeued(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "search"
    process = _start(_search(sweep), tmp_path, lem_cache)
    _kill_when(process, lambda: (sweep / "1" / ".hydra").is_dir())
    assert [t.state for t in _trials(sweep)] == [TrialState.COMPLETE, TrialState.RUNNING]
    resumed = run_lem(*_search(sweep), cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trial 1 was left running by a killed search: marked failed, re-queued" in resumed.stderr
    trials = _trials(sweep)
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"] is True
    assert trials[2].user_attrs["requeued_from"] == 1 and trials[2].params == trials[1].params
    assert [t.number for t in trials if t.state == TrialState.COMPLETE] == [0, 2, 3]
    assert "3 completed, 0 failed" in resumed.stderr, "an interrupted trial is not counted as a failure"


@pytest.mark.slow
def test_sigterm_requeues_the_running_trial_and_exits_143(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "search"
    env = {**os.environ, "LEM_CACHE_DIR": str(lem_cache), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lem", *_search(sweep)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while not (sweep / "1" / ".hydra").is_dir():
        assert process.poll() is None and time.monotonic() < deadline, "the search ended before it was interrupted"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143 and "Traceback" not in stderr, stderr[-2000:]
    trials = _trials(sweep)
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"] is True
    assert trials[2].state == TrialState.WAITING and trials[2].user_attrs["requeued_from"] == 1
    resumed = run_lem(*_search(sweep), cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert resumed.returncode == 0 and "3 completed, 0 failed" in resumed.stderr, resumed.stderr[-2000:]
    assert _trials(sweep)[2].params == trials[1].params


@pytest.mark.slow
def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "search"
    args = ["-m", "hydra/sweeper=lem_search", "model=choice(lem-tiny-llama,/nonexistent/model)", *QUICK]
    args += ["hydra.sweeper.sampler=random", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={sweep}"]
    run = run_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode == 0, run.stderr[-3000:]
    trials = _trials(sweep, "lem_search")  # the sweeper's default study name
    states = {t.number: t.state for t in trials}
    assert set(states.values()) == {TrialState.COMPLETE, TrialState.FAIL} and len(states) == 3
    for trial in trials:
        job = read_job(sweep / str(trial.number))
        if trial.state == TrialState.FAIL:
            assert trial.params["model"] == "/nonexistent/model"
            assert job.status == "failed" and job.result is not None and job.result.error is not None
            assert trial.user_attrs["fail_reason"].startswith(f"failed ({job.result.error.phase}:")
        else:
            assert job.status == "ok"
    failed = sum(s == TrialState.FAIL for s in states.values())
    assert f"{3 - failed} completed, {failed} failed" in run.stderr and "Traceback" not in run.stderr


def test_a_search_where_no_trial_completes_exits_non_zero(tmp_path: Path) -> None:
    """A trial whose config has an error finding is not launched; it is recorded failed in the study and in its
    results.json (phase validate), and the search goes on; with no completed trial the process exits 1."""
    sweep = tmp_path / "search"
    run = run_lem(*_search(sweep, "hydra.sweeper.n_trials=2", "backend.batch_size=choice(0)"), cwd=tmp_path)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "none of 2 trial(s) completed" in run.stderr and "0 completed, 2 failed" in run.stderr
    for trial in _trials(sweep):
        assert trial.state == TrialState.FAIL and "backend.batch_size" in trial.user_attrs["fail_reason"]
        job = read_job(sweep / str(trial.number))
        assert job.status == "failed" and job.result is not None and job.result.error is not None
        assert job.result.error.phase == "validate" and "not launched" in job.result.error.message
        assert (sweep / str(trial.number) / ".hydra" / "overrides.yaml").is_file()


def test_dry_run_lists_the_space_and_a_bad_fixed_setting_rejects_the_search(tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    run = run_lem(*_search(sweep, "dry_run=true"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "dry run: nothing launched" in run.stderr and "backend.batch_size: one of 1, 2, 4" in run.stderr
    assert not sweep.exists()
    bad = run_lem(*_search(sweep, "num_input_prompts=0"), cwd=tmp_path)
    assert bad.returncode == 2 and "search rejected before running" in bad.stderr, bad.stderr[-2000:]
    assert "num_input_prompts" in bad.stderr and not sweep.exists()
    vllm = run_lem("-m", "+search=energy_pareto_vllm", f"hydra.sweep.dir={sweep}", "dry_run=true", cwd=tmp_path)
    assert vllm.returncode == 0 and "backend.max_num_seqs: one of" in vllm.stderr, vllm.stderr[-2000:]


# --- the search space -------------------------------------------------------------------------------------------


def test_search_space_from_hydras_sweep_syntax() -> None:
    parser = OverridesParser.create()
    declared = [
        "backend.batch_size=choice(1,4,16)",
        "fp_precision=float32,bfloat16",
        "backend.max_tokens_per_batch=range(64,257,64)",
        "decoder.temperature=interval(0.1,1.0)",
        "x=tag(log,interval(0.001,1))",
        "y=tag(int,interval(1,8))",
        "num_input_prompts=8",
    ]
    space = parse_space(parser.parse_overrides([*declared, "num_input_prompts=16", "fp_precision=float16,bfloat16"]))
    assert space.fixed == ["num_input_prompts=16"], "the command line wins over the preset's params"
    d = space.distributions
    assert d["backend.batch_size"] == CategoricalDistribution([1, 4, 16])
    assert d["fp_precision"] == CategoricalDistribution(["float16", "bfloat16"])
    assert d["backend.max_tokens_per_batch"] == IntDistribution(64, 256, step=64)
    assert d["decoder.temperature"] == FloatDistribution(0.1, 1.0)
    assert d["x"] == FloatDistribution(0.001, 1.0, log=True) and d["y"] == IntDistribution(1, 8)
    chosen = {"backend.batch_size": 4, "fp_precision": "bfloat16", "backend.max_tokens_per_batch": 128}
    chosen |= {"decoder.temperature": 0.5, "x": 0.01, "y": 3}
    assert space.overrides(chosen) == [
        "num_input_prompts=16",
        "backend.batch_size=4",
        "fp_precision=bfloat16",
        "backend.max_tokens_per_batch=128",
        "decoder.temperature=0.5",
        "x=0.01",
        "y=3",
    ]
    with pytest.raises(LemError, match="search space is empty"):
        parse_space(parser.parse_overrides(["a=1"]))


# --- impact -------------------------------------------------------------------------------------------------------


def _metrics(output_tokens: int, duration_s: float) -> Metrics:
    latency = Distribution(mean=1.0, p50=1.0, p95=1.0, p99=1.0, count=4)
    return Metrics(
        num_requests=4,
        input_tokens=100,
        output_tokens=output_tokens,
        total_tokens=100 + output_tokens,
        duration_s=duration_s,
        output_tokens_per_s=output_tokens / duration_s,
        requests_per_s=4 / duration_s,
        latency_s=latency,
        ttft_s=None,
        itl_s=None,
        timing_source="batch",
        peak_device_memory_bytes=None,
        peak_host_rss_bytes=1,
        flops_estimate=None,
        flops_method="unavailable",
    )


def _energy(measured: float | None, estimated: float | None) -> EnergyMetrics:
    return EnergyMetrics(
        measured_energy_j=None,
        measured_net_energy_j=None,
        j_per_output_token=measured,
        net_j_per_output_token=None,
        output_tokens_per_j=None,
        j_per_request=None,
        avg_power_w=None,
        peak_power_w=None,
        estimated_energy_j=None,
        estimated_net_energy_j=None,
        estimated_j_per_output_token=estimated,
        estimate_model=None,
        domains=[],
        load=None,
    )


def test_impact_figures_by_hand() -> None:
    inputs = ImpactConfig(grid_intensity_g_per_kwh=400.0, pue=1.5, price_per_kwh=0.2, gpu_hour_price=3.0)
    # 0.36 J/token x 1e6 tokens = 360 kJ = 0.1 kWh, x PUE 1.5 = 0.15 kWh -> 60 g CO2e and 0.03 per 1M tokens.
    # 2 GPUs x 36 s = 0.02 GPU-hours for 1000 tokens -> 0.06 per 1000 tokens -> 60 per 1M tokens.
    measured = impact_figures(inputs, _metrics(1000, 36.0), _energy(0.36, 0.72), gpus=2)
    assert measured.kwh_per_1m_output_tokens == pytest.approx(0.15)
    assert measured.g_co2e_per_1m_output_tokens == pytest.approx(60.0)
    assert measured.energy_cost_per_1m_output_tokens == pytest.approx(0.03)
    assert measured.estimated_g_co2e_per_1m_output_tokens == pytest.approx(120.0), "the estimate, in its own field"
    assert measured.instance_cost_per_1m_output_tokens == pytest.approx(60.0)
    inputs_stored = (measured.grid_intensity_g_per_kwh, measured.pue, measured.price_per_kwh, measured.gpus)
    assert inputs_stored == (400, 1.5, 0.2, 2)
    estimate_only = impact_figures(inputs, _metrics(1000, 36.0), _energy(None, 0.36), gpus=0)
    assert estimate_only.g_co2e_per_1m_output_tokens is None and estimate_only.energy_cost_per_1m_output_tokens is None
    assert estimate_only.estimated_energy_cost_per_1m_output_tokens == pytest.approx(0.03)
    assert estimate_only.instance_cost_per_1m_output_tokens is None, "no GPU used: no GPU-hours"
    nothing = impact_figures(ImpactConfig(), _metrics(1000, 36.0), _energy(None, None), gpus=1)
    assert all(getattr(nothing, f) is None for f in ("kwh_per_1m_output_tokens", "estimated_kwh_per_1m_output_tokens"))


def test_impact_inputs_do_not_change_the_config_hash_and_old_results_still_load() -> None:
    plain = compose_config()
    priced = compose_config("impact.grid_intensity_g_per_kwh=400", "impact.price_per_kwh=0.2")
    assert priced.impact.grid_intensity_g_per_kwh == 400
    assert config_hash(priced) == config_hash(plain)
    assert config_hash(compose_config("max_output_tokens=9")) != config_hash(plain)
    old = {
        "result_schema_version": "1.0.0",
        "lem_version": "0.1.0",
        "status": "failed",
        "created_at": "2026-11-22T00:00:00+00:00",
        "config": {},
        "config_hash": "x",
        "findings": [],
        "environment": {},
        "phases_s": {},
    }
    assert from_dict(Result, old).impact is None, "a results.json written before the impact block still loads"


@pytest.mark.slow
def test_a_run_with_impact_inputs_writes_labelled_estimates(tmp_path: Path, lem_cache: Path) -> None:
    args = [*QUICK, "impact.grid_intensity_g_per_kwh=400", "impact.price_per_kwh=0.2"]
    run = run_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = tmp_path.glob("outputs/*/*/results.json")
    data = json.loads(path.read_text())
    impact, energy = data["impact"], data["energy"]
    assert (impact["grid_intensity_g_per_kwh"], impact["price_per_kwh"], impact["pue"]) == (400, 0.2, 1.0)
    kwh = energy["estimated_j_per_output_token"] * 1e6 / 3.6e6
    assert impact["estimated_g_co2e_per_1m_output_tokens"] == pytest.approx(400 * kwh)
    assert impact["estimated_energy_cost_per_1m_output_tokens"] == pytest.approx(0.2 * kwh)
    assert impact["g_co2e_per_1m_output_tokens"] is None, "no measured energy here: no measured figure"
    assert "ESTIMATE" in run.stdout and "g CO2e" in run.stdout


# --- the plugin's boundaries ------------------------------------------------------------------------------------


def test_hydra_finds_the_search_sweeper_by_its_own_scan(tmp_path: Path) -> None:
    plugins = run_lem("--info", "plugins", cwd=tmp_path)
    assert plugins.returncode == 0, plugins.stderr[-2000:]
    sweepers = plugins.stdout.split("Sweeper:")[1].split("Profiling")[0].split()
    assert {"CampaignSweeper", "SearchSweeper"} <= set(sweepers) and "LemSweeper" not in sweepers, sweepers
    source = (REPO / "hydra_plugins" / "lem_search" / "sweeper.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith("from __future__")]
    assert not imports, "Hydra's plugin scan executes the module outside sys.modules: annotations must be real"
