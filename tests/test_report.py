"""The sweep report: bootstrap math against hand-computed cases, the comparison verdict, the Pareto front, and
`python -m lem.report` over synthetic results.json files (valid per the schema) and over a real sweep."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from conftest import run_lem

from lem.report.__main__ import main as report_main
from lem.report.load import load_sweep
from lem.report.stats import bootstrap_ci, compare, describe, pareto_front
from lem.results.schema import (
    Distribution,
    DomainEnergy,
    EnergyMetrics,
    ErrorInfo,
    Impact,
    Metrics,
    Quality,
    Result,
    WarmupReport,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- statistics -------------------------------------------------------------------------------------------------


def test_bootstrap_mean_of_1_2_3_matches_the_enumerated_distribution() -> None:
    # The 27 equally likely resamples of [1, 2, 3] have sums 3..9 with counts 1, 3, 6, 7, 6, 3, 1.
    # CDF of the resampled mean: P(<=1)=1/27, P(<=4/3)=4/27, P(<=5/3)=10/27, P(<=2)=17/27, P(<=7/3)=23/27,
    # P(<=8/3)=26/27. So the 2.5% and 97.5% quantiles are 1 and 3; the 25% and 75% quantiles are 5/3 and 7/3.
    low, high = bootstrap_ci([1, 2, 3], np.mean, resamples=200_000, seed=1)
    assert (low, high) == pytest.approx((1.0, 3.0))
    low, high = bootstrap_ci([1, 2, 3], np.mean, resamples=200_000, seed=1, level=0.5)
    assert (low, high) == pytest.approx((5 / 3, 7 / 3))
    # Median of 3 draws: P(1) = P(at least two 1s) = 7/27, P(2) = 13/27, P(3) = 7/27. The 25% quantile lies in the
    # mass at 1 (P(<=1) = 0.259 > 0.25) and the 75% quantile in the mass at 3 (P(<=2) = 0.741 < 0.75).
    low, high = bootstrap_ci([1, 2, 3], np.median, resamples=200_000, seed=1, level=0.5)
    assert (low, high) == pytest.approx((1.0, 3.0))


def test_bootstrap_mean_agrees_with_normal_theory_on_a_large_sample() -> None:
    sample = np.random.default_rng(7).normal(10.0, 2.0, size=400)
    low, high = bootstrap_ci(sample, np.mean, resamples=4000, seed=3)
    half_width = 1.96 * sample.std(ddof=1) / np.sqrt(sample.size)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert (low + high) / 2 == pytest.approx(sample.mean(), abs=0.1 * half_width)


def test_constant_sample_gives_a_zero_width_ci_and_one_value_gives_none() -> None:
    estimate = describe([0.25, 0.25, 0.25, 0.25])
    assert (estimate.mean_low, estimate.mean_high) == (0.25, 0.25)
    assert (estimate.median_low, estimate.median_high) == (0.25, 0.25)
    assert not estimate.few_cycles
    single = describe([0.3, float("nan")])
    assert single.n == 1 and single.mean == 0.3 and np.isnan(single.mean_low) and single.few_cycles


def test_bootstrap_is_reproducible_with_a_seed_and_varies_without_it() -> None:
    sample = [0.31, 0.35, 0.29, 0.4, 0.33]
    assert bootstrap_ci(sample, np.mean, seed=5) == bootstrap_ci(sample, np.mean, seed=5)
    assert bootstrap_ci(sample, np.mean, seed=5) != bootstrap_ci(sample, np.mean, seed=6)


def test_comparison_verdicts() -> None:
    lower = compare([0.50, 0.52, 0.51, 0.49], [0.20, 0.22, 0.21, 0.19])
    assert lower.verdict == "B lower"
    assert lower.difference == pytest.approx(0.205 - 0.505)
    assert lower.low < lower.difference < lower.high < 0
    assert compare([0.2, 0.21, 0.19], [0.5, 0.51, 0.49]).verdict == "B higher"
    same = compare([0.50, 0.52, 0.51], [0.50, 0.52, 0.51])
    assert same.verdict == "no clear difference" and same.difference == 0 and same.low < 0 < same.high
    assert compare([0.5], [0.2, 0.3]).verdict == "too few runs"


def test_pareto_front() -> None:
    throughput = [10, 20, 30, 15, 30]
    j_per_token = [1.0, 0.5, 0.7, 0.9, 0.8]
    # (15, 0.9) is dominated by (20, 0.5); (30, 0.8) by (30, 0.7).
    front = pareto_front(throughput, j_per_token, maximise_x=True, maximise_y=False)
    assert front.tolist() == [False, True, True, False, False]
    latency = [1.0, 2.0, 0.5]
    assert pareto_front(latency, [0.3, 0.1, 0.4], maximise_x=False, maximise_y=False).tolist() == [True, True, True]


# --- synthetic sweeps -------------------------------------------------------------------------------------------


def _result(
    *,
    batch_size: int,
    seed: int,
    j_per_token: float | None,
    estimated_j_per_token: float | None = None,
    output_tokens: int = 256,
    backend: str = "pytorch",
    failed: bool = False,
    impact: Impact | None = None,
) -> Result:
    """A results.json as the harness writes it (values are made up; the structure is the schema's)."""
    config = {"backend": {"name": backend, "batch_size": batch_size}, "model": "tiny", "random_seed": seed}
    base = {
        "result_schema_version": "1.0.0",
        "lem_version": "0.1.0",
        "created_at": "2026-11-22T00:00:00+00:00",
        "config": config,
        "config_hash": f"hash{batch_size}{seed}",
        "findings": [],
        "environment": {"hostname": "test"},
        "phases_s": {"validate": 0.01},
    }
    if failed:
        error = ErrorInfo(phase="load", type="OutOfMemoryError", message="CUDA out of memory while loading")
        return Result(status="failed", error=error, **base)
    duration_s = 4.0
    latency = Distribution(mean=1.0, p50=0.9 + 0.1 * batch_size, p95=1.2 + 0.1 * batch_size, p99=1.5, count=16)
    metrics = Metrics(
        num_requests=16,
        input_tokens=800,
        output_tokens=output_tokens,
        total_tokens=800 + output_tokens,
        duration_s=duration_s,
        output_tokens_per_s=output_tokens / duration_s * batch_size,
        requests_per_s=4.0,
        latency_s=latency,
        ttft_s=None,
        itl_s=None,
        timing_source="batch",
        peak_device_memory_bytes=None,
        peak_host_rss_bytes=1 << 29,
        flops_estimate=None,
        flops_method="unavailable",
    )
    domains = []
    measured_j = None if j_per_token is None else j_per_token * output_tokens
    estimated_j = None if estimated_j_per_token is None else estimated_j_per_token * output_tokens
    if measured_j is not None:
        domains.append(DomainEnergy("gpu0", "counter", measured_j, 50.0, 0.6 * measured_j))
    if estimated_j is not None:
        domains.append(DomainEnergy("host_cpu", "estimate", estimated_j, 6.0, 0.5 * estimated_j, note="estimate"))
    energy = EnergyMetrics(
        measured_energy_j=measured_j,
        measured_net_energy_j=None if measured_j is None else 0.6 * measured_j,
        j_per_output_token=j_per_token,
        net_j_per_output_token=None,
        output_tokens_per_j=None if measured_j is None else output_tokens / measured_j,
        j_per_request=None,
        avg_power_w=None if measured_j is None else measured_j / duration_s,
        peak_power_w=None,
        estimated_energy_j=estimated_j,
        estimated_net_energy_j=None if estimated_j is None else 0.5 * estimated_j,
        estimated_j_per_output_token=estimated_j_per_token,
        estimate_model=None,
        domains=domains,
        load=None,
    )
    quality = Quality(
        window_duration_s=duration_s,
        window_process_cpu_time_s=2 * duration_s,
        timeseries_samples=40,
        achieved_sample_rate_hz=10.0,
        baseline_age_s=1.0,
        baseline_from_cache=True,
        baseline_power_cv={},
        baseline_skipped_reason=None,
        temperature_start_c={},
        temperature_end_c={},
        gpu_shared_with_other_processes=False,
        thermal_floor_reached=None,
        thermal_wait_s=0.0,
        warmup=WarmupReport(enabled=True, mode="convergence", prompts=5, final_cv=0.05, converged=True),
        flags=[] if measured_j is not None else ["no_measured_energy"],
    )
    return Result(status="ok", metrics=metrics, energy=energy, quality=quality, impact=impact, **base)


def _job(root: Path, name: str, overrides: list[str], result: Result | None = None, text: str | None = None) -> Path:
    """A Hydra job folder: .hydra/overrides.yaml, and results.json from `result` or raw `text` (or none)."""
    job_dir = root / name
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if result is not None:
        (job_dir / "results.json").write_text(json.dumps(dataclasses.asdict(result), indent=2))
    elif text is not None:
        (job_dir / "results.json").write_text(text)
    if result is not None and result.status == "ok":
        time_s = np.arange(0, 4.0, 0.1)
        if result.energy.measured_energy_j is not None:
            frame = pd.DataFrame({"time_s": time_s, "gpu0_power_w": 60 + 20 * np.sin(time_s), "gpu1_power_w": 55.0})
        else:
            frame = pd.DataFrame({"time_s": time_s, "host_cpu_util_pct": 90 + 10 * np.cos(time_s)})
        frame.to_parquet(job_dir / "timeseries.parquet")
    return job_dir


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """2 points × 3 cycles (batch size 1 and 4, the cycle is a seed override) with one failed job, plus one job whose
    results.json is corrupt and one job that never wrote one."""
    root = tmp_path / "multirun" / "2026-11-22" / "10-00-00"
    j_per_token = {1: [0.50, 0.52, 0.51], 4: [0.20, 0.22]}
    number = 0
    for cycle in range(3):
        for batch_size in (1, 4):
            overrides = [f"backend.batch_size={batch_size}", f"random_seed={cycle}", "max_output_tokens=16"]
            failed = batch_size == 4 and cycle == 2
            value = None if failed else j_per_token[batch_size][cycle]
            _job(
                root,
                str(number),
                overrides,
                _result(batch_size=batch_size, seed=cycle, j_per_token=value, failed=failed),
            )
            number += 1
    _job(root, str(number), ["backend.batch_size=4", "random_seed=3", "max_output_tokens=16"], text='{"status": "ok"')
    _job(root, str(number + 1), ["backend.batch_size=1", "random_seed=3", "max_output_tokens=16"])
    return root


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 5_000, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300, path


def test_load_makes_one_row_per_job_and_keeps_broken_ones(sweep: Path) -> None:
    loaded = load_sweep(sweep)
    table = loaded.table.set_index("job")
    assert loaded.swept == ["backend.batch_size"]  # random_seed varies too, but seeds never define a point
    assert len(table) == 8
    assert table["status"].to_dict() == {
        "0": "ok", "1": "ok", "2": "ok", "3": "ok", "4": "ok", "5": "failed", "6": "unreadable", "7": "missing"
    }  # fmt: skip
    assert table.loc["6", "error_message"].startswith("JSONDecodeError")
    assert table.loc["5", "error_phase"] == "load"
    assert table["backend.batch_size"].tolist() == [1, 4, 1, 4, 1, 4, 4, 1]
    assert table.loc["0", "j_per_output_token"] == 0.50 and np.isnan(table.loc["0", "estimated_j_per_output_token"])
    assert table.loc["0", "energy_sources"] == "counter"
    assert table.loc["0", "config.backend.name"] == "pytorch"


def test_a_result_that_breaks_the_schema_is_unreadable_not_dropped(tmp_path: Path) -> None:
    data = dataclasses.asdict(_result(batch_size=1, seed=0, j_per_token=0.5))
    data["metrics"]["surprise"] = 1
    (tmp_path / "results.json").write_text(json.dumps(data))
    table = load_sweep(tmp_path).table
    assert table["status"].tolist() == ["unreadable"]
    assert "surprise" in table["error_message"].iloc[0]


def test_without_overrides_files_the_varying_config_keys_are_the_swept_parameters(tmp_path: Path) -> None:
    for number, (batch_size, seed) in enumerate([(1, 0), (1, 1), (8, 0), (8, 1)]):
        job_dir = tmp_path / str(number)
        job_dir.mkdir()
        result = _result(batch_size=batch_size, seed=seed, j_per_token=0.5)
        (job_dir / "results.json").write_text(json.dumps(dataclasses.asdict(result)))
    loaded = load_sweep(tmp_path)
    assert loaded.swept == ["backend.batch_size"]
    assert loaded.table["backend.batch_size"].tolist() == [1, 1, 8, 8]


def test_report_over_a_partial_sweep(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = report_main([str(sweep), "--compare", "backend.batch_size=1", "backend.batch_size=4"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = sweep / "report"
    assert "8 job(s)" in out and "5 ok, 1 failed, 1 missing, 1 unreadable" in out
    assert f"wrote {report}/" in out

    summary = pd.read_csv(report / "summary.csv")
    assert set(summary["group"]) == {"backend.batch_size=1", "backend.batch_size=4"}
    energy = summary[summary["metric"] == "j_per_output_token"].set_index("group")
    assert energy["kind"].tolist() == ["measured", "measured"]
    assert energy.loc["backend.batch_size=1", "n"] == 3
    assert energy.loc["backend.batch_size=1", "mean"] == pytest.approx(0.51)
    assert energy.loc["backend.batch_size=1", "median"] == pytest.approx(0.51)
    assert energy.loc["backend.batch_size=1", "mean_ci_low"] >= 0.50
    assert energy.loc["backend.batch_size=1", "mean_ci_high"] <= 0.52
    assert energy.loc["backend.batch_size=4", "n"] == 2
    assert not energy.loc["backend.batch_size=1", "few_cycles"]
    assert energy.loc["backend.batch_size=4", "few_cycles"]
    assert "few_cycles" in energy.loc["backend.batch_size=4", "marks"]
    assert "failed:1" in energy.loc["backend.batch_size=4", "marks"]
    assert "missing:1" in energy.loc["backend.batch_size=1", "marks"]

    results = pd.read_parquet(report / "results.parquet")
    assert len(results) == 8 and {"status", "backend.batch_size", "j_per_output_token", "job_dir"} <= set(results)

    markdown = (report / "summary.md").read_text()
    assert (
        "| 5 | backend.batch_size=4 | failed | load | OutOfMemoryError: CUDA out of memory while loading |" in markdown
    )
    assert "| 6 | backend.batch_size=4 | unreadable |" in markdown
    assert "| 7 | backend.batch_size=1 | missing |" in markdown
    assert "few_cycles" in markdown
    assert "Ranking by J / output token (measured)" in markdown
    assert "B lower" in markdown and "B lower" in out

    figures = sorted(report.rglob("*.png"))
    names = {p.relative_to(report).as_posix() for p in figures}
    assert {"pareto_throughput.png", "pareto_latency_p95.png", "bars_j_per_output_token.png"} <= names
    assert {"timeseries/01_backend.batch_size=1.png", "timeseries/02_backend.batch_size=4.png"} <= names
    for path in figures:
        _assert_png(path)


def test_group_by_and_identical_groups_compare_as_no_difference(sweep: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "elsewhere"
    code = report_main(
        [str(sweep), "--group-by", "backend", "--out", str(out_dir), "--compare", "random_seed=0", "random_seed=0"]
    )
    assert code == 0
    summary = pd.read_csv(out_dir / "summary.csv")
    # `backend` resolves to the group's choice (backend.name); jobs without a result have no config to group by.
    assert list(dict.fromkeys(summary["group"])) == ["backend=pytorch", "backend=n/a"]
    assert summary.loc[summary["metric"] == "j_per_output_token", "n"].tolist() == [5]
    assert "no clear difference" in (out_dir / "summary.md").read_text()
    assert not (sweep / "report").exists()


def test_a_sweep_where_every_job_failed_still_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for number, batch_size in enumerate((1, 2)):
        result = _result(batch_size=batch_size, seed=0, j_per_token=None, failed=True)
        _job(tmp_path, str(number), [f"backend.batch_size={batch_size}"], result)
    assert report_main([str(tmp_path)]) == 0
    assert "2 failed" in capsys.readouterr().out
    markdown = (tmp_path / "report" / "summary.md").read_text()
    assert markdown.count("| failed | load | OutOfMemoryError") == 2
    assert not list((tmp_path / "report").rglob("*.png"))


def test_bad_input_is_one_line(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main([str(sweep), "--group-by", "batchsize"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lem.report: error: --group-by: 'batchsize'") and "backend.batch_size" in err
    assert "\n" not in err
    assert report_main([str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_estimates_are_kept_apart_and_token_mismatch_is_marked(tmp_path: Path) -> None:
    """Group A mixes a measured and an estimated job; backends doing different work are marked in the ranking."""
    root = tmp_path / "sweep"
    jobs = [
        ("pytorch", 1, 0.5, None, 256),
        ("pytorch", 1, None, 0.9, 256),
        ("pytorch", 1, 0.52, None, 256),
        ("vllm", 1, 0.3, None, 128),
        ("vllm", 1, 0.31, None, 128),
        ("vllm", 1, 0.29, None, 128),
    ]
    for number, (backend, batch_size, measured, estimated, tokens) in enumerate(jobs):
        result = _result(
            batch_size=batch_size,
            seed=number,
            j_per_token=measured,
            estimated_j_per_token=estimated,
            output_tokens=tokens,
            backend=backend,
        )
        _job(root, str(number), [f"backend={backend}"], result)
    assert report_main([str(root)]) == 0
    summary = pd.read_csv(root / "report" / "summary.csv")
    energy = summary[summary["metric"] == "j_per_output_token"]
    pytorch = energy[energy["group"] == "backend=pytorch"].set_index("kind")
    assert pytorch.loc["measured", "n"] == 2 and pytorch.loc["measured", "mean"] == pytest.approx(0.51)
    assert pytorch.loc["estimate", "n"] == 1 and pytorch.loc["estimate", "mean"] == pytest.approx(0.9)
    assert "mixed_energy_sources" in pytorch.loc["measured", "marks"]
    markdown = (root / "report" / "summary.md").read_text()
    assert "J / output token (ESTIMATE)" in markdown
    measured_ranking = markdown.split("## Ranking by J / output token (measured)")[1].split("##")[0]
    assert "| 1 | 2 | backend=vllm |" in measured_ranking and "tokens_differ" in measured_ranking
    assert "(docs/architecture.md, workload parity)" in measured_ranking
    for path in (root / "report").rglob("*.png"):
        _assert_png(path)


# --- a real sweep ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_on_a_real_sweep(tmp_path: Path, lem_cache: Path) -> None:
    env = {"LEM_CACHE_DIR": str(lem_cache)}
    args = ["-m", "backend.batch_size=1,2", "num_input_prompts=6", "max_output_tokens=8", "warmup.max_prompts=3"]
    sweep_run = run_lem(*args, "baseline.duration_s=0.2", cwd=tmp_path, env=env)
    assert sweep_run.returncode == 0, sweep_run.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "multirun").glob("*/*")
    report = run_lem(str(sweep_dir), cwd=tmp_path, env=env, module="lem.report")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "2 job(s)" in report.stdout and "2 ok" in report.stdout and "ESTIMATE" in report.stdout
    for name in ("summary.md", "summary.csv", "results.parquet", "pareto_throughput.png"):
        assert (sweep_dir / "report" / name).is_file(), name
    summary = pd.read_csv(sweep_dir / "report" / "summary.csv")
    assert set(summary["group"]) == {"backend.batch_size=1", "backend.batch_size=2"}
    assert summary["few_cycles"].all()


# --- searches: the Pareto front, --require and --rank-by --------------------------------------------------------


def _impact(j_per_token: float) -> Impact:
    """The impact block lem writes for a measured J/token at 400 g CO2e/kWh and 0.2 USD/kWh."""
    kwh = j_per_token * 1e6 / 3.6e6
    return Impact(
        grid_intensity_g_per_kwh=400.0,
        pue=1.0,
        price_per_kwh=0.2,
        gpu_hour_price=None,
        currency="USD",
        gpus=1,
        kwh_per_1m_output_tokens=kwh,
        g_co2e_per_1m_output_tokens=400 * kwh,
        energy_cost_per_1m_output_tokens=0.2 * kwh,
    )


@pytest.fixture
def search(tmp_path: Path) -> Path:
    """A search's sweep folder: one trial per configuration (folder = trial number), one of them failed.

    Throughput is 64 x batch size (tok/s); J/token 0.2, 0.3, 0.25, 0.4 for batch 1, 2, 4, 8: batch 2 (0.3 J at
    128 tok/s) is dominated by batch 4 (0.25 J at 256 tok/s), so the front is batch 1, 4 and 8.
    """
    root = tmp_path / "multirun" / "search" / "energy_pareto"
    for number, (batch_size, j_per_token) in enumerate([(1, 0.2), (2, 0.3), (4, 0.25), (8, 0.4)]):
        result = _result(batch_size=batch_size, seed=0, j_per_token=j_per_token, impact=_impact(j_per_token))
        _job(root, str(number), [f"backend.batch_size={batch_size}"], result)
    _job(root, "4", ["backend.batch_size=16"], _result(batch_size=16, seed=0, j_per_token=None, failed=True))
    return root


def test_search_front_recommendation_and_impact_ranking(search: Path, capsys: pytest.CaptureFixture[str]) -> None:
    requirements = ["output_tokens_per_s>=200", "output_tokens_per_s>=10000", "latency_p95_s<=1.45"]
    args = [str(search), "--rank-by", "g_co2e_per_1m_output_tokens"]
    assert report_main([*args, *(part for r in requirements for part in ("--require", r))]) == 0
    out = capsys.readouterr().out
    front_line = next(line for line in out.splitlines() if line.startswith("Pareto front (measured"))
    assert "#1 backend.batch_size=1" in front_line and "#3 backend.batch_size=4" in front_line
    assert "#4 backend.batch_size=8" in front_line and "backend.batch_size=2" not in front_line
    cheapest = next(line for line in out.splitlines() if line.startswith("require output_tokens_per_s>=200"))
    assert "2 of 4 configuration(s) meet it; the cheapest is #3 backend.batch_size=4" in cheapest
    assert "CO2e / 1M output tokens (measured) 27.78 (1 run)" in cheapest, "cheapest by --rank-by"
    assert "one run per configuration, so no CI" in cheapest
    assert "per 1M output tokens it costs 27.78 g CO2e, 0.01389 USD energy cost" in cheapest
    assert (
        "require output_tokens_per_s>=10000 (measured): no configuration meets it; of 4 configuration(s), the "
        "highest median output_tokens_per_s is 512 (#4 backend.batch_size=8)" in out
    )
    assert "latency_p95_s<=1.45 (measured): 2 of 4 configuration(s) meet it; the cheapest is #1 " in out

    markdown = (search / "report" / "summary.md").read_text()
    front = markdown.split("## Pareto front: J / output token (measured) against throughput")[1].split("##")[0]
    assert "3 of 4 configuration(s) (measured J/token) are on the front" in front
    assert [line.split(" | ")[1] for line in front.splitlines() if line.startswith("| ") and "---" not in line][1:] == [
        "backend.batch_size=1",
        "backend.batch_size=4",
        "backend.batch_size=8",
    ]
    assert "| 1 | 22.22 g CO2e, 0.01111 USD energy |" in front, "the impact figures, in the currency stored"
    ranked = markdown.split("## Ranking by CO2e / 1M output tokens (measured), lowest median first")[1].split("##")[0]
    rows = [line.split(" | ")[2] for line in ranked.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "backend.batch_size=1",
        "backend.batch_size=4",
        "backend.batch_size=2",
        "backend.batch_size=8",
    ]
    assert "impact inputs (not measured" in markdown and "grid 400 g CO2e per kWh" in markdown
    assert "## Recommendation" in markdown and "| 4 | backend.batch_size=16 | failed |" in markdown
    _assert_png(search / "report" / "pareto_throughput.png")


def test_require_with_cycles_names_the_ci(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    requirements = ["--require", "output_tokens_per_s>=1", "--require", "output_tokens_per_s<=100"]
    assert report_main([str(sweep), *requirements]) == 0
    out = capsys.readouterr().out
    both = next(line for line in out.splitlines() if line.startswith("require output_tokens_per_s>=1 "))
    assert "2 of 2 configuration(s) meet it; the cheapest is #2 backend.batch_size=4" in both
    assert "J / output token (measured) 0.21 [95% CI 0.2, 0.22, few_cycles: 2 runs]" in both
    slow = next(line for line in out.splitlines() if line.startswith("require output_tokens_per_s<=100 "))
    assert "the cheapest is #1 backend.batch_size=1: median J / output token (measured) 0.51 [95% CI" in slow
    assert ", 3 runs]" in slow and "no CI" not in slow


def test_estimated_and_measured_trials_get_separate_fronts(tmp_path: Path) -> None:
    for number, (batch_size, measured, estimated) in enumerate([(1, 0.2, None), (2, 0.1, None), (4, None, 0.05)]):
        result = _result(batch_size=batch_size, seed=0, j_per_token=measured, estimated_j_per_token=estimated)
        _job(tmp_path, str(number), [f"backend.batch_size={batch_size}"], result)
    assert report_main([str(tmp_path), "--require", "output_tokens_per_s>=1"]) == 0
    markdown = (tmp_path / "report" / "summary.md").read_text()
    measured = markdown.split("## Pareto front: J / output token (measured)")[1].split("##")[0]
    estimated = markdown.split("## Pareto front: J / output token (ESTIMATE)")[1].split("##")[0]
    assert "backend.batch_size=2" in measured and "backend.batch_size=4" not in measured
    assert "backend.batch_size=4" in estimated and "backend.batch_size=2" not in estimated
    assert "output_tokens_per_s>=1 (measured): 2 of 2 configuration(s) meet it; the cheapest is #2 " in markdown
    assert "output_tokens_per_s>=1 (ESTIMATE): 1 of 1 configuration(s) meet it; the cheapest is #3 " in markdown


def test_bad_require_or_rank_by_is_one_line(search: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_main([str(search), "--require", "throughput>500"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lem.report: error: --require: 'throughput>500' is not METRIC>=X") and "\n" not in err
    assert report_main([str(search), "--require", "speed>=5"]) == 2
    err = capsys.readouterr().err
    assert "'speed' is not a metric of these results" in err and "output_tokens_per_s" in err
    assert report_main([str(search), "--rank-by", "speed"]) == 2
    assert "--rank-by: 'speed'" in capsys.readouterr().err
    assert not (search / "report").exists(), "bad input writes nothing"
