"""Prefill and decode energy apart (energy.phases=split): the split's arithmetic by hand, real runs under simulated
RAPL (PyTorch, vLLM on CPU, TensorRT-LLM by contract), vLLM's prefix cache between passes, and validation."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from conftest import compose_config, one_error_line, run_lem
from test_tensorrt import CONTRACT, install_double, trt_config
from test_tensorrt import QUICK as TRT_QUICK
from zeus_seams import fake_rapl

from lem.config.machine import probe_machine
from lem.config.rules import errors, validate
from lem.config.schema import ExperimentConfig
from lem.energy.baseline import Baseline
from lem.energy.meter import DomainReading, WindowReading
from lem.harness import run_experiment
from lem.model.tiny import ensure_tiny_model
from lem.phases import PrefillMeasurement, phase_split, split_phases
from lem.report.render import write_report
from lem.results.reader import read_result
from lem.results.schema import DomainEnergy, Result

QUICK = ["num_input_prompts=12", "max_output_tokens=32", "warmup.max_prompts=4"]
#: The simulated RAPL powers, and the idle powers of the cached baseline, watts.
PACKAGE_W, DRAM_W, PACKAGE_IDLE_W, DRAM_IDLE_W = 30.0, 6.0, 20.0, 2.0
#: How stale the simulated counters may be when Zeus reads them, seconds: their writer thread runs every 5 ms, later
#: when the 2 cores are busy.
STALE_S = 0.05


# --- the split, by hand --------------------------------------------------------------------------------------------


def _prefill(
    passes: int = 4, duration_s: float = 2.0, input_tokens: int = 500, requests: int = 10
) -> PrefillMeasurement:
    return PrefillMeasurement(WindowReading(duration_s, 0.5, ()), passes, input_tokens, requests)


def _domain(domain: str, energy_j: float | None, net_j: float | None, source: str = "counter") -> DomainEnergy:
    return DomainEnergy(domain, source, energy_j, None, net_j)


def test_decode_is_the_window_minus_one_prefill_pass_per_domain_and_per_token() -> None:
    prefill_domains = [_domain("cpu0", 60.0, 40.0), _domain("dram0", 12.0, 8.0)]  # 4 passes
    window_domains = [_domain("cpu0", 300.0, 200.0), _domain("dram0", 30.0, 20.0)]
    split, flags = split_phases(_prefill(), prefill_domains, window_domains, output_tokens=160, requests=10)
    assert flags == []
    assert split.prefill_passes == 4 and split.prefill_window_s == 2.0 and split.prefill_duration_s == 0.5
    assert [(d.domain, d.prefill_j, d.prefill_net_j, d.decode_j, d.decode_net_j) for d in split.domains] == [
        ("cpu0", 15.0, 10.0, 285.0, 190.0),
        ("dram0", 3.0, 2.0, 27.0, 18.0),
    ]
    assert (split.prefill_energy_j, split.prefill_net_energy_j) == (18.0, 12.0)
    assert (split.decode_energy_j, split.decode_net_energy_j) == (312.0, 208.0)
    assert split.prefill_input_tokens == 500 and split.decode_output_tokens == 150
    assert split.prefill_j_per_input_token == pytest.approx(18.0 / 500)
    assert split.prefill_net_j_per_input_token == pytest.approx(12.0 / 500)
    assert split.decode_j_per_output_token == pytest.approx(312.0 / 150)
    assert split.decode_net_j_per_output_token == pytest.approx(208.0 / 150)
    assert split.estimated_prefill_energy_j is None and split.estimated_decode_j_per_output_token is None
    assert "4 pass(es)" in split.method and "2.000 s" in split.method


def test_a_negative_decode_is_null_and_flagged_never_printed() -> None:
    prefill_domains = [_domain("cpu0", 60.0, 40.0), _domain("dram0", 16.0, 8.0)]  # dram0: 4 J a pass
    window_domains = [_domain("cpu0", 300.0, 200.0), _domain("dram0", 3.0, 1.0)]
    split, flags = split_phases(_prefill(), prefill_domains, window_domains, output_tokens=160, requests=10)
    dram = split.domains[1]
    assert dram.prefill_j == 4.0 and dram.decode_j is None and dram.decode_net_j is None
    assert flags == ["decode_energy_negative:dram0", "decode_net_energy_negative:dram0"]
    assert split.decode_energy_j == pytest.approx(303.0 - 19.0), "the total is still the difference of the totals"

    window_domains = [_domain("cpu0", 10.0, 5.0), _domain("dram0", 3.0, 1.0)]
    split, flags = split_phases(_prefill(), prefill_domains, window_domains, output_tokens=160, requests=10)
    assert split.decode_energy_j is None and split.decode_net_energy_j is None
    assert split.decode_j_per_output_token is None and split.decode_net_j_per_output_token is None
    assert {"decode_energy_negative", "decode_net_energy_negative"} <= set(flags)
    assert split.prefill_energy_j == 19.0, "prefill stands on its own window"


def test_estimates_stay_apart_and_one_token_requests_have_no_decode_per_token() -> None:
    prefill_domains = [_domain("host_cpu", 8.0, 4.0, "estimate")]
    window_domains = [_domain("host_cpu", 20.0, 10.0, "estimate")]
    split, flags = split_phases(_prefill(passes=2), prefill_domains, window_domains, output_tokens=10, requests=10)
    assert split.prefill_energy_j is None and split.decode_energy_j is None, "no measured domain"
    assert split.estimated_prefill_energy_j == 4.0 and split.estimated_decode_energy_j == 16.0
    assert split.estimated_prefill_net_energy_j == 2.0 and split.estimated_decode_net_energy_j == 8.0
    assert split.estimated_prefill_j_per_input_token == pytest.approx(4.0 / 500)
    assert split.decode_output_tokens == 0 and split.estimated_decode_j_per_output_token is None
    assert flags == []


def test_prefill_net_uses_the_same_baseline_as_the_window() -> None:
    window = WindowReading(2.0, 0.5, (DomainReading("cpu0", "counter", 80.0), DomainReading("dram0", "counter", 9.0)))
    baseline = Baseline({"cpu0": 20.0, "dram0": 2.0}, {}, {}, time.time(), 5.0, True)
    prefill = PrefillMeasurement(window, 2, 100, 4)
    window_domains = [_domain("cpu0", 400.0, 200.0), _domain("dram0", 40.0, 20.0)]
    split, flags = phase_split(prefill, baseline, None, window_domains, output_tokens=40, requests=4)
    cpu, dram = split.domains
    assert (cpu.prefill_j, cpu.prefill_net_j) == (40.0, 20.0), "(80 - 20 W x 2 s) / 2 passes"
    assert (dram.prefill_j, dram.prefill_net_j) == (4.5, 2.5)
    assert (cpu.decode_j, cpu.decode_net_j) == (360.0, 180.0) and flags == []


# --- real runs under simulated RAPL --------------------------------------------------------------------------------


def _config(tmp_path: Path, lem_cache: Path, *overrides: str) -> ExperimentConfig:
    """A config on the built-in model with a cached idle baseline of the simulated RAPL domains."""
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    baseline = {"power_w": {"cpu0": PACKAGE_IDLE_W, "dram0": DRAM_IDLE_W}, "power_cv": {}, "duration_s": 5.0}
    key = f"{socket.gethostname()}:cpu0"
    (cache / "baselines.json").write_text(json.dumps({key: {**baseline, "measured_at": time.time()}}))
    model = ensure_tiny_model(lem_cache)
    return compose_config(*QUICK, f"model={model}", f"cache_dir={cache}", *overrides)


def _run(config: ExperimentConfig, job_dir: Path) -> Result:
    with fake_rapl(job_dir / "powercap", package_w=PACKAGE_W, dram_w=DRAM_W):
        run_experiment(config, validate(config, probe_machine()), job_dir)
    return read_result(job_dir / "results.json")


def _check_split(result: Result) -> None:
    """The split of a run at constant simulated power: prefill is 36 W x its time, decode the rest of the window."""
    assert result.status == "ok" and result.energy is not None and result.metrics is not None
    assert result.quality is not None
    split, metrics = result.energy.phases, result.metrics
    assert split is not None
    phases = list(result.phases_s)
    assert phases.index("warmup") < phases.index("prefill") == phases.index("measure") - 1, phases
    assert split.prefill_window_s >= 1.0 and split.prefill_passes >= 1
    assert split.prefill_duration_s == pytest.approx(split.prefill_window_s / split.prefill_passes)
    passes, window_s, pass_s = split.prefill_passes, split.prefill_window_s, split.prefill_duration_s
    total_w, idle_w = PACKAGE_W + DRAM_W, PACKAGE_IDLE_W + DRAM_IDLE_W
    assert split.prefill_energy_j is not None and split.prefill_net_energy_j is not None
    assert split.prefill_energy_j * passes == pytest.approx(total_w * window_s, abs=total_w * STALE_S)
    assert split.prefill_net_energy_j * passes == pytest.approx((total_w - idle_w) * window_s, abs=total_w * STALE_S)
    cpu, dram = split.domains
    assert (cpu.domain, dram.domain) == ("cpu0", "dram0")
    assert cpu.prefill_j is not None and cpu.prefill_j * passes == pytest.approx(
        PACKAGE_W * window_s, abs=PACKAGE_W * STALE_S
    )
    assert dram.prefill_j is not None and dram.prefill_j * passes == pytest.approx(
        DRAM_W * window_s, abs=DRAM_W * STALE_S
    )
    assert split.decode_energy_j is not None and split.decode_net_energy_j is not None
    decode_s = metrics.duration_s - pass_s
    assert split.decode_energy_j == pytest.approx(total_w * decode_s, abs=total_w * 2 * STALE_S)
    assert split.decode_energy_j + split.prefill_energy_j == pytest.approx(result.energy.measured_energy_j)
    assert split.prefill_input_tokens == metrics.input_tokens, "the prefill pass is the same prompts"
    assert split.decode_output_tokens == metrics.output_tokens - metrics.num_requests == 12 * 31
    assert split.prefill_j_per_input_token == pytest.approx(split.prefill_energy_j / metrics.input_tokens)
    assert split.prefill_j_per_input_token > 0
    assert split.decode_j_per_output_token == pytest.approx(split.decode_energy_j / (12 * 31))
    assert not [f for f in result.quality.flags if "decode" in f or f.startswith("prefill:")], result.quality.flags


@pytest.mark.slow
def test_pytorch_split_run_meters_prefill_and_decode(
    tmp_path: Path, lem_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run(_config(tmp_path, lem_cache, "energy.phases=split"), tmp_path)
    _check_split(result)
    assert result.config["energy"]["phases"] == "split"
    out = capsys.readouterr().out
    assert "prefill: 12 prompts x 1 output token" in out
    assert "prefill J / input token" in out and "decode J / output token" in out and "ESTIMATE" not in out
    report = write_report(tmp_path, tmp_path / "report", resamples=100, seed=0)
    rows = report.summary.set_index(["metric", "kind"])
    split = result.energy.phases
    assert split is not None
    assert rows.loc[("prefill_j_per_input_token", "measured"), "median"] == pytest.approx(
        split.prefill_j_per_input_token
    )
    assert rows.loc[("decode_j_per_output_token", "measured"), "median"] == pytest.approx(
        split.decode_j_per_output_token
    )
    assert ("prefill_j_per_input_token", "estimate") not in rows.index, "no estimate: none in the result"
    markdown = (tmp_path / "report" / "summary.md").read_text()
    assert "| prefill J / input token (measured) |" in markdown and "| decode J / output token (measured) |" in markdown


@pytest.mark.slow
def test_the_default_total_writes_no_split(tmp_path: Path, lem_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _run(_config(tmp_path, lem_cache), tmp_path)
    assert result.status == "ok" and result.energy is not None and result.energy.measured_energy_j
    assert result.energy.phases is None and "prefill" not in result.phases_s
    assert json.loads((tmp_path / "results.json").read_text())["energy"]["phases"] is None
    assert "prefill" not in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_split_run_meters_prefill_and_decode(tmp_path: Path, lem_cache: Path) -> None:
    pytest.importorskip("vllm")
    _check_split(_run(_config(tmp_path, lem_cache, "backend=vllm", "energy.phases=split"), tmp_path))


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_prefill_passes_take_nothing_from_the_prefix_cache(lem_cache: Path) -> None:
    """vLLM's own prefix-cache counters: a second prefill pass through lem hits the cache no more than the first
    (prompts sharing a prefix within one call may), while the same prompts sent again without a reset do."""
    pytest.importorskip("vllm")
    from vllm import SamplingParams

    from lem.backends.base import create_backend
    from lem.harness import prepare_prompts

    config = compose_config(*QUICK, f"cache_dir={lem_cache}", "backend=vllm", "backend.disable_log_stats=false")
    model_path = str(ensure_tiny_model(lem_cache))
    prompts = prepare_prompts(config, model_path)
    backend = create_backend(config, model_path, [])
    try:
        backend.load()
        llm = backend._llm  # vLLM's LLM, read for its metrics only

        def hits() -> float:
            return sum(m.value for m in llm.get_metrics() if m.name == "vllm:prefix_cache_hits")

        backend.generate(prompts, output_tokens=1)
        first = hits()
        backend.generate(prompts, output_tokens=1)
        second = hits() - first
        backend.generate(prompts)
        full = hits() - first - second
        llm.generate(prompts, SamplingParams(max_tokens=1), use_tqdm=False)
        repeated = hits() - first - second - full
    finally:
        backend.close()
    assert second == first and full == first, (first, second, full)
    assert repeated > first, "without the reset, the repeated prompts come from the cache"


@pytest.mark.slow
def test_tensorrt_prefill_asks_for_exactly_one_token_by_contract(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    """The contract-built tensorrt_llm double accepts only the recorded SamplingParams keywords."""
    for key in ("max_tokens", "min_tokens", "ignore_eos"):
        assert key in CONTRACT["objects"]["SamplingParams"]["fields"], key
    state = install_double(monkeypatch, CONTRACT, tmp_path / "workspace")
    config = trt_config(
        f"cache_dir={lem_cache}",
        f"backend.engine_cache_dir={tmp_path / 'engines'}",
        *TRT_QUICK,
        "energy.phases=split",
    )
    run_experiment(config, validate(config, probe_machine()), tmp_path)
    result = read_result(tmp_path / "results.json")
    assert result.status == "ok" and result.energy is not None and result.energy.phases is not None
    prefill_params = [p for p in state.kwargs_of("SamplingParams") if p["max_tokens"] == 1]
    assert prefill_params and all(p["min_tokens"] == 1 and p["ignore_eos"] for p in prefill_params)
    assert len(prefill_params) == result.energy.phases.prefill_passes + 1, "the metered passes and one unmetered"


# --- validation ----------------------------------------------------------------------------------------------------


def test_split_with_serving_is_refused_in_one_line(tmp_path: Path) -> None:
    overrides = ("backend=vllm", "scenario=serving", "energy.phases=split")
    findings = validate(compose_config(*overrides), probe_machine())
    assert [f.code for f in errors(findings) if f.param == "energy.phases"] == ["PHASES_SPLIT_OFFLINE_ONLY"]
    result = run_lem(*overrides, cwd=tmp_path)
    line = one_error_line(result.stderr)
    assert result.returncode == 2 and "energy.phases" in line and "scenario=offline" in line


def test_split_refuses_tensorrt_kv_block_reuse_and_warns_on_one_token() -> None:
    findings = validate(trt_config("energy.phases=split", "backend.enable_kv_cache_reuse=true"), probe_machine())
    assert "PHASES_SPLIT_CACHED" in [f.code for f in errors(findings)]
    findings = validate(compose_config("energy.phases=split", "max_output_tokens=1"), probe_machine())
    assert [(f.code, f.severity) for f in findings if f.code.startswith("PHASES")] == [
        ("PHASES_SPLIT_NO_DECODE", "warning")
    ]
    assert not [f for f in validate(compose_config("energy.phases=split"), probe_machine()) if "PHASES" in f.code]
