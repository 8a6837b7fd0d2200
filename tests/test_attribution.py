"""Energy of each request (lem.attribution): the window's energy shared by the tokens each request processed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import compose_config
from test_node_power import answering
from zeus_seams import SimulatedGpu, fake_rapl, simulated_gpus

from lem.attribution import PROCESSED_TOKENS, RequestSet, attribute, per_request_energy
from lem.backends.base import Generation, RequestRecord
from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.energy.meter import CounterMark, WindowReading
from lem.harness import run_experiment
from lem.report.__main__ import main
from lem.results.reader import read_result
from lem.results.schema import DomainEnergy

QUICK = ["num_input_prompts=12", "max_output_tokens=16", "warmup.max_prompts=4", "baseline.duration_s=0.5"]


def _window(marks: list[tuple[float, float]], domain: str = "cpu0") -> WindowReading:
    """A window with counter marks (time_s, cumulative joules) of one counter domain."""
    return WindowReading(
        duration_s=marks[-1][0] - marks[0][0],
        cpu_time_s=0.0,
        domains=(),
        started_s=marks[0][0],
        marks=tuple(CounterMark(t, {domain: e}) for t, e in marks),
    )


def _domain(energy_j: float, net_j: float | None = None, domain: str = "cpu0") -> DomainEnergy:
    return DomainEnergy(domain, "counter", energy_j, None, net_j)


def test_continuous_batch_gives_more_energy_to_the_request_with_four_times_the_output() -> None:
    # Two requests admitted together (engine steps): one finishes after 8 tokens, the other after 32.
    records = [
        RequestRecord(input_tokens=10, output_tokens=8, started_s=0.0, finished_s=0.8, first_token_s=0.1),
        RequestRecord(input_tokens=10, output_tokens=32, started_s=0.0, finished_s=3.2, first_token_s=0.1),
    ]
    generation = Generation(records, "engine_step", origin_s=100.0)
    window = _window([(100.0, 0.0), (100.1, 5.0), (100.8, 12.0), (103.2, 36.0)])
    energies = attribute(generation, window, [_domain(36.0, 12.0)], None)
    assert energies is not None and energies.methods == {"cpu0": "counter marks"}
    short, long = energies.gross_j["cpu0"]
    assert long > 2 * short and short + long == pytest.approx(36.0)
    net = energies.net_j["cpu0"]
    assert net is not None and net.sum() == pytest.approx(12.0) and net[1] / net[0] == pytest.approx(long / short)


def test_static_batch_charges_a_row_that_computed_past_its_eos() -> None:
    # One batch of two rows: one stopped at its EOS after 4 tokens but the batch computed 16 positions for it.
    records = [
        RequestRecord(10, 4, 0.0, 1.0, computed_output_tokens=16),
        RequestRecord(10, 16, 0.0, 1.0),
    ]
    energies = attribute(Generation(records, "batch", 0.0), _window([(0.0, 0.0), (1.0, 20.0)]), [_domain(20.0)], None)
    assert energies is not None
    assert list(energies.gross_j["cpu0"]) == pytest.approx([10.0, 10.0])


def test_gpu_intervals_follow_the_power_timeline() -> None:
    records = [RequestRecord(5, 5, 0.0, 1.0), RequestRecord(5, 5, 1.0, 3.0)]
    window = _window([(0.0, 0.0), (1.0, 0.0), (3.0, 0.0)], domain="gpu0")
    timeline = pd.DataFrame({"timestamp": [0.0, 1.0, 3.0], "gpu0_power_w": [100.0, 100.0, 300.0]})
    energies = attribute(Generation(records, "batch", 0.0), window, [_domain(500.0, domain="gpu0")], timeline)
    assert energies is not None and energies.methods == {"gpu0": "power timeline"}
    # 100 J in the first second, 400 J in the next two (trapezoids), each interval to its own batch
    assert list(energies.gross_j["gpu0"]) == pytest.approx([100.0, 400.0])


def test_interval_without_tokens_goes_to_the_requests_in_flight() -> None:
    records = [RequestRecord(5, 5, 0.0, 1.0), RequestRecord(5, 5, 2.0, 3.0)]
    window = _window([(0.0, 0.0), (1.0, 10.0), (2.0, 30.0), (3.0, 40.0)])
    energies = attribute(Generation(records, "batch", 0.0), window, [_domain(40.0)], None)
    assert energies is not None
    assert list(energies.gross_j["cpu0"]) == pytest.approx([20.0, 20.0]), "the idle second's 20 J, half each"


def test_run_writes_requests_table_that_sums_to_measured_energy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = compose_config(*QUICK, f"cache_dir={tmp_path / 'cache'}", "backend.batch_size=4", "fixed_length=false")
    with fake_rapl(tmp_path / "powercap", package_w=30.0, dram_w=6.0):
        result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    assert result.energy is not None and result.energy.measured_energy_j is not None
    printed = capsys.readouterr().out
    assert "[counter]" in printed, "the energy row names its source"
    assert "J / request p50 / p99" in printed and "(ESTIMATE)" not in printed
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    assert len(frame) == 12 and list(frame["prompt_index"]) == list(range(12))
    assert frame["energy_j"].sum() == pytest.approx(result.energy.measured_energy_j, rel=0.01)
    assert (frame["cpu0_energy_j"] + frame["dram0_energy_j"]).to_numpy() == pytest.approx(frame["energy_j"])
    assert frame["estimated_energy_j"].isna().all(), "counters present: nothing is estimated"
    summary = read_result(tmp_path / "results.json").energy.requests  # type: ignore[union-attr]
    assert summary is not None and summary.requests == 12 and summary.processed_tokens == PROCESSED_TOKENS
    assert summary.energy_j is not None and summary.energy_j.min <= summary.energy_j.p50 <= summary.energy_j.max
    assert "counter marks: cpu0, dram0" in summary.method
    assert summary.method.startswith("4 intervals"), "one per batch of 4, and the tail after the last batch"
    assert main([str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    jobs = pd.read_parquet(tmp_path / "report" / "results.parquet")
    assert jobs["request_p99_j"][0] == pytest.approx(summary.energy_j.p99)
    (plot,) = (tmp_path / "report" / "request_energy").glob("*.png")
    assert plot.stat().st_size > 0


def test_without_counters_the_table_carries_estimates_only(tmp_path: Path) -> None:
    config = compose_config(*QUICK, f"cache_dir={tmp_path / 'cache'}", "energy.when_no_counter=estimate")
    result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    assert result.energy is not None and result.energy.estimated_energy_j is not None
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    assert frame["energy_j"].isna().all() and frame["net_energy_j"].isna().all()
    assert frame["estimated_energy_j"].sum() == pytest.approx(result.energy.estimated_energy_j, rel=0.01)


def test_gpu_energy_per_request_from_the_timeline(tmp_path: Path) -> None:
    config = compose_config(*QUICK, f"cache_dir={tmp_path / 'cache'}", "backend.batch_size=6", "energy.cpu=false")
    with simulated_gpus(SimulatedGpu(power_w=150.0)):
        result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    assert result.energy is not None and result.energy.measured_energy_j is not None
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    assert frame["energy_j"].sum() == pytest.approx(result.energy.measured_energy_j, rel=0.01)
    assert "power timeline: gpu0" in frame["method"][0]


def test_per_request_energy_is_none_without_requests() -> None:
    window = _window([(0.0, 0.0), (1.0, 1.0)])
    empty = RequestSet.in_prompt_order(Generation([], "batch", 0.0))
    assert per_request_energy(empty, window, [_domain(1.0)], None) is None


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_requests_share_the_window_by_engine_steps(tmp_path: Path, lem_cache: Path) -> None:
    pytest.importorskip("vllm")
    config = compose_config("backend=vllm", *QUICK, f"cache_dir={lem_cache}", "backend.max_num_seqs=4")
    with fake_rapl(tmp_path / "powercap", package_w=30.0, dram_w=6.0):
        result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    assert result.energy is not None and result.energy.measured_energy_j is not None
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    assert len(frame) == 12 and frame["ttft_s"].notna().all()
    assert frame["energy_j"].sum() == pytest.approx(result.energy.measured_energy_j, rel=0.01)
    intervals = int(frame["method"][0].split()[0])
    assert intervals >= 6, "marks at the steps where 4-request waves start and finish (3 waves: at least 6)"
    assert (frame["energy_j"] > 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pytorch", pytest.param("vllm", marks=pytest.mark.vllm)])
def test_where_the_joules_go_all_at_once(
    backend: str, tmp_path: Path, lem_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15's Done-when: simulated RAPL (30 W + 6 W), energy.phases=split, energy.node=ipmi with a BMC reading
    400 W: prefill and decode energy, a per-request table that adds up, a node of 400 W kept out of the total."""
    if backend == "vllm":
        pytest.importorskip("vllm")
    monkeypatch.setenv("PATH", answering(tmp_path / "bin", 400)["PATH"])
    config = compose_config(
        f"backend={backend}",
        *QUICK,
        "max_output_tokens=48",  # decode well above one prefill pass: the split's difference is not lost in noise
        f"cache_dir={lem_cache}",
        "energy.phases=split",
        "energy.node=ipmi",
    )
    with fake_rapl(tmp_path / "powercap", package_w=30.0, dram_w=6.0):
        result = run_experiment(config, validate(config, probe_machine()), tmp_path)
    energy, metrics = result.energy, result.metrics
    assert result.status == "ok" and energy is not None and metrics is not None
    measured_j = energy.measured_energy_j
    assert measured_j == pytest.approx(36.0 * metrics.duration_s, abs=36.0 * 0.1), "up to 50 ms stale at each edge"
    phases = energy.phases
    assert phases is not None and phases.prefill_energy_j is not None and phases.decode_energy_j is not None
    assert phases.prefill_energy_j + phases.decode_energy_j == pytest.approx(measured_j)
    assert phases.prefill_j_per_input_token is not None and phases.decode_j_per_output_token is not None
    frame = pd.read_parquet(tmp_path / "requests.parquet")
    assert frame["energy_j"].sum() == pytest.approx(measured_j, rel=0.01)
    node = energy.node
    assert node is not None and node.avg_power_w == pytest.approx(400.0)
    assert {d.domain for d in energy.domains} == {"cpu0", "dram0"} and node.rest_of_node_j is not None
