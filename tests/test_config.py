"""The configuration layer: schema, introspection, rules, presets and the one-line errors, through real Hydra."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, compose_config, one_error_line, run_lem

from lem.backends.escape_hatches import escape_hatch_fields
from lem.backends.precision import resolve_precision
from lem.backends.pytorch.config import PyTorchConfig
from lem.backends.registry import BACKENDS
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.vllm.config import VLLMConfig
from lem.config.introspection import get_backend_params, get_experiment_params, get_param_skip_conditions
from lem.config.machine import GpuFact, MachineFacts
from lem.config.overrides import as_typed
from lem.config.reference import render_reference
from lem.config.rules import errors, validate

SEED_FILE = REPO.parent / "shared" / "seeds" / "000_92d6282b4a2b94f7.txt"
_CLASSES = {"PyTorchConfig": "pytorch", "VLLMConfig": "vllm", "TensorRTConfig": "tensorrt"}
#: The parameters the issue names (the seed file, parsed below where present, names more).
ISSUE_PARAMS = {
    "pytorch": "batch_size batching_strategy max_tokens_per_batch attn_implementation torch_compile use_cache "
    "low_cpu_mem_usage cache_implementation device_map quantization num_beams guidance_scale low_memory "
    "diversity_penalty typical_p epsilon_cutoff eta_cutoff no_repeat_ngram_size prompt_lookup_num_tokens "
    "assistant_model extra",
    "vllm": "max_num_seqs max_num_batched_tokens max_model_len gpu_memory_utilization swap_space cpu_offload_gb "
    "tensor_parallel_size pipeline_parallel_size distributed_executor_backend enable_prefix_caching "
    "enable_chunked_prefill enforce_eager kv_cache_dtype block_size dtype tokenizer_mode trust_remote_code "
    "num_scheduler_steps quantization load_format seed speculative_config compilation_config disable_log_stats extra",
    "tensorrt": "max_batch_size max_num_tokens max_input_len max_seq_len builder_opt_level tp_size pp_size "
    "quantization "
    "calib_dataset calib_batches kv_cache_type kv_cache_free_gpu_memory_fraction enable_chunked_context "
    "enable_kv_cache_reuse gemm_plugin gpt_attention_plugin use_paged_context_fmha batching_type scheduler_policy "
    "engine_cache_dir force_rebuild extra_build_args extra_runtime_args",
}
NO_GPU = MachineFacts(gpus=(), packages=frozenset({"torch", "transformers"}))
A100 = MachineFacts(gpus=(GpuFact(0, "A100", (8, 0)),), packages=frozenset({"torch", "transformers", "vllm"}))
H100 = MachineFacts(gpus=(GpuFact(0, "H100", (9, 0)),), packages=frozenset({"torch", "transformers", "vllm"}))


def _seed_params() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {b: set() for b in _CLASSES.values()}
    for name, cls in re.findall(
        r'"(\w+)" in (PyTorchConfig|VLLMConfig|TensorRTConfig)\.model_fields', SEED_FILE.read_text()
    ):
        found[_CLASSES[cls]].add(name)
    return found


@pytest.mark.skipif(not SEED_FILE.exists(), reason="shared/seeds is not beside this checkout")
def test_every_seed_parameter_exists_and_is_discovered() -> None:
    seeds = _seed_params()
    assert sum(len(v) for v in seeds.values()) >= 15, "the seed file parse found too few names"
    for backend, names in seeds.items():
        params = get_backend_params(backend)
        assert {f"{backend}.{n}" for n in names} <= params.keys(), names - {k.split(".")[1] for k in params}


@pytest.mark.parametrize("backend", ["pytorch", "vllm", "tensorrt"])
def test_issue_parameters_exist(backend: str) -> None:
    params = get_backend_params(backend)
    missing = [n for n in ISSUE_PARAMS[backend].split() if f"{backend}.{n}" not in params]
    assert not missing


def test_parameter_counts_and_metadata() -> None:
    counts = {b: len(get_backend_params(b)) for b in ("pytorch", "vllm", "tensorrt")}
    assert counts["pytorch"] >= 25 and counts["vllm"] >= 30 and counts["tensorrt"] >= 25, counts
    for backend in counts:
        for key, info in get_backend_params(backend).items():
            assert info.description, key
            assert info.maps_to or info.unsupported, f"{key} says neither where it goes nor why it cannot"
    assert get_experiment_params()["warmup.target_cv"].default == 0.1
    with pytest.raises(ValueError, match="choose one of"):
        get_backend_params("onnx")


def test_fp8_skip_condition_is_machine_checkable() -> None:
    conditions = get_param_skip_conditions()
    fp8 = [c for key, c in conditions.items() if "fp8" in key]
    assert fp8
    for condition in fp8:
        assert condition.applies(NO_GPU) and condition.applies(A100) and not condition.applies(H100)


def test_escape_hatches_accept_arbitrary_dicts() -> None:
    config = compose_config("+backend.extra.custom_param=42", "+backend.extra.nested={a: 1}")
    assert isinstance(config.backend, PyTorchConfig)
    assert config.backend.extra == {"custom_param": 42, "nested": {"a": 1}}
    trt = compose_config(
        "backend=tensorrt", "+backend.extra_build_args.custom_flag=true", "+backend.extra_runtime_args.x=1"
    )
    assert trt.backend.extra_build_args == {"custom_flag": True} and trt.backend.extra_runtime_args == {"x": 1}
    assert VLLMConfig(extra={"seed": 42}).extra["seed"] == 42


@pytest.mark.parametrize(
    ("backend", "cls"), [("pytorch", PyTorchConfig), ("vllm", VLLMConfig), ("tensorrt", TensorRTConfig)]
)
def test_backend_option_composes_to_its_own_dataclass(backend: str, cls: type) -> None:
    """hydra issue 1722: the composed backend must be the option's dataclass, not the base."""
    assert type(compose_config(f"backend={backend}").backend) is cls


def _codes(config_overrides: list[str], facts: MachineFacts = NO_GPU) -> dict[str, str]:
    return {f.code: f.severity for f in validate(compose_config(*config_overrides), facts)}


def test_schema_version_findings() -> None:
    assert _codes([])["SCHEMA_VERSION_MISSING"] == "info"
    assert _codes(["schema_version='2.0.0'"])["SCHEMA_VERSION_MISMATCH"] == "warning"
    assert not {"SCHEMA_VERSION_MISSING", "SCHEMA_VERSION_MISMATCH"} & _codes(["schema_version='3.0.0'"]).keys()


@pytest.mark.parametrize(
    ("overrides", "facts", "code", "severity"),
    [
        (["backend=vllm", "backend.kv_cache_dtype=fp8"], A100, "NEEDS_HARDWARE", "error"),
        (["backend=tensorrt", "fp_precision=float16", "backend.quantization=fp8"], NO_GPU, "NEEDS_HARDWARE", "error"),
        (["backend=vllm", "backend.tensor_parallel_size=2"], A100, "PARALLELISM_EXCEEDS_GPUS", "error"),
        (
            ["backend=tensorrt", "fp_precision=float16", "backend.tp_size=2", "backend.pp_size=2"],
            H100,
            "PARALLELISM_EXCEEDS_GPUS",
            "error",
        ),
        (["backend=tensorrt", "fp_precision=float32"], H100, "TRT_FLOAT32", "error"),
        (["backend.attn_implementation=flash_attention_2"], NO_GPU, "NEEDS_HARDWARE", "error"),
        (["backend.quantization=bnb_4bit"], H100, "NEEDS_HARDWARE", "error"),
        (["backend=vllm", "backend.max_model_len=100"], NO_GPU, "CONTEXT_TOO_LONG", "error"),
        (["backend=vllm", "backend.max_model_len=192"], NO_GPU, "CONTEXT_NO_ROOM_FOR_SPECIAL_TOKENS", "warning"),
        (
            ["backend=tensorrt", "fp_precision=float16", "backend.max_input_len=128"],
            NO_GPU,
            "CONTEXT_NO_ROOM_FOR_SPECIAL_TOKENS",
            "warning",
        ),
        (["backend=tensorrt", "fp_precision=float16", "backend.max_input_len=64"], NO_GPU, "CONTEXT_TOO_LONG", "error"),
        (["decoder.temperature=0.7"], NO_GPU, "SAMPLING_WHILE_GREEDY", "warning"),
        (["backend.typical_p=0.5"], NO_GPU, "SAMPLING_WHILE_GREEDY", "warning"),
        (["+backend.extra.num_beams=2"], NO_GPU, "EXTRA_DUPLICATES_FIELD", "error"),
        (
            ["backend=tensorrt", "+backend.extra_runtime_args.tensor_parallel_size=2"],
            NO_GPU,
            "EXTRA_DUPLICATES_FIELD",
            "error",
        ),
        (["+backend.extra.penalty_alph=0.5"], NO_GPU, "UNKNOWN_ENGINE_ARG", "error"),
        (["backend=vllm", "+backend.extra.max_logprobs=5"], NO_GPU, "ENGINE_ARGS_NOT_CHECKED", "warning"),
        (
            ["backend=tensorrt", "+backend.extra_build_args.opt_num_tokens=5"],
            NO_GPU,
            "ENGINE_ARGS_NOT_CHECKED",
            "warning",
        ),
        (["+backend.foo=1"], NO_GPU, "UNKNOWN_KEY", "error"),
        (["+warmup.count_=1"], NO_GPU, "UNKNOWN_KEY", "error"),
        (["backend=vllm", "+backend.extra.max_num_seqs=2"], NO_GPU, "EXTRA_DUPLICATES_FIELD", "error"),
        (["backend=vllm", "backend.num_scheduler_steps=8"], NO_GPU, "PARAM_UNSUPPORTED", "error"),
        (["backend=vllm", "backend.swap_space=4"], NO_GPU, "PARAM_UNSUPPORTED", "error"),
        (
            ["backend=tensorrt", "fp_precision=float16", "backend.builder_opt_level=3"],
            NO_GPU,
            "PARAM_UNSUPPORTED",
            "error",
        ),
        (
            ["backend=tensorrt", "fp_precision=float16", "backend.quantization=int4_awq"],
            NO_GPU,
            "QUANT_NEEDS_CALIBRATION",
            "error",
        ),
        (["backend=vllm"], NO_GPU, "BACKEND_NOT_INSTALLED", "warning"),
        (["backend.batch_size=0"], NO_GPU, "OUT_OF_RANGE", "error"),
        (["fp_precision=float64"], NO_GPU, "INVALID_VALUE", "error"),
        (["gpus=[1]"], H100, "GPU_NOT_VISIBLE", "error"),
        (["backend=vllm", "backend.dtype=bfloat16"], A100, "DTYPE_DIFFERS", "warning"),
    ],
)
def test_rule(overrides: list[str], facts: MachineFacts, code: str, severity: str) -> None:
    assert _codes(overrides, facts).get(code) == severity


def test_rules_stay_quiet_where_the_config_is_possible() -> None:
    assert not errors(validate(compose_config("backend=vllm", "backend.kv_cache_dtype=fp8"), H100))
    for backend in ("pytorch", "vllm", "tensorrt"):  # the defaults (fp_precision=auto) are possible on any machine
        for facts in (NO_GPU, A100, H100):
            assert not errors(validate(compose_config(f"backend={backend}"), facts)), (backend, facts)
    assert not errors(validate(compose_config("backend=vllm", "backend.max_model_len=192"), NO_GPU))
    assert "SAMPLING_WHILE_GREEDY" not in _codes(["decoder.preset=standard", "decoder.temperature=0.7"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["backend=nope"], r"backend=nope: no such option in group 'backend'; choose one of: pytorch, tensorrt, vllm"),
        (["backend.batch_size=abc"], r"backend\.batch_size: .*'abc'.*expects int"),
        (["no_such_key=1", "dry_run=true"], r"no_such_key: unknown key"),
        (["backend.batch_sze=4"], r"did you mean 'backend\.batch_size'"),
        (["scenario.request_rate=3"], r"scenario\.request_rate: unknown key.*select scenario=serving first"),
        (["backend.max_num_seqs=8"], r"max_num_seqs is a key of backend=vllm: select backend=vllm first"),
        (["fp_precision=float64", "dry_run=true"], r"fp_precision: 'float64' is not allowed; use one of"),
        (
            ["backend.extra.penalty_alph=0.5"],
            r"backend\.extra\.penalty_alph: 'penalty_alph' is not an argument of the installed transformers [\d.]+'s "
            r"generate\(\) and GenerationConfig; did you mean backend\.extra\.penalty_alpha\?",
        ),
        (
            ["+backend.extra_load.attn_implmentation=eager", "dry_run=true"],
            r"backend\.extra_load\.attn_implmentation: .*did you mean backend\.attn_implementation\?",
        ),
        (
            ["backend=vllm", "backend.extra_load.x=1"],
            r"backend\.extra_load: no such parameter of backend=vllm; did you ",
        ),
    ],
)
def test_bad_input_is_one_line_error(args: list[str], expected: str, tmp_path: Path, lem_cache: Path) -> None:
    from lem.model.tiny import ensure_tiny_model

    ensure_tiny_model(lem_cache)  # extra_load keys are checked against the model's own config class: it must exist
    result = run_lem(*args, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_line = one_error_line(result.stderr)
    assert re.search(expected, error_line), error_line


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))
def test_experiment_preset_validates_clean(preset: str, tmp_path: Path) -> None:
    result = run_lem(f"+experiment={preset}", "dry_run=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr and "valid: 0 error(s)" in result.stderr


@pytest.mark.parametrize("campaign", sorted(p.stem for p in (REPO / "conf" / "campaign").glob("*.yaml")))
def test_campaign_preset_validates_clean(campaign: str, tmp_path: Path) -> None:
    result = run_lem("-m", f"+campaign={campaign}", "dry_run=true", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    rows = [line.split("│") for line in result.stderr.splitlines() if line.count("│") > 5]
    assert len(rows) >= 4 and all(row[5].strip() == "0" for row in rows), "every job: 0 errors"


def test_cfg_job_prints_composed_config(tmp_path: Path) -> None:
    result = run_lem("backend=vllm", "backend.max_num_seqs=64", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0 and "max_num_seqs: 64" in result.stdout


def test_help_lists_backend_group(tmp_path: Path) -> None:
    result = run_lem("--help", cwd=tmp_path)
    assert result.returncode == 0 and re.search(r"backend: pytorch, tensorrt, vllm", result.stdout), result.stdout


def test_generated_reference_is_current() -> None:
    committed = (REPO / "docs" / "generated" / "config-reference.md").read_text()
    assert committed == render_reference(), "run: python scripts/gen_config_reference.py"


# --- fp_precision=auto ---------------------------------------------------------------------------------------------


def _checkpoint(tmp_path: Path, **config: object) -> str:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", **config}))
    return str(folder)


@pytest.mark.parametrize(
    ("stored", "gpus", "allow_float32", "expected"),
    [
        ({"dtype": "bfloat16"}, [(9, 0)], True, "bfloat16"),  # a 16-bit checkpoint keeps its dtype on a GPU
        ({"dtype": "float16"}, [(8, 0)], True, "float16"),
        ({"torch_dtype": "float16"}, [(9, 0)], True, "float16"),  # transformers 4's key
        ({"text_config": {"dtype": "float16"}}, [(9, 0)], True, "float16"),  # a multimodal model's
        ({"dtype": "float32"}, [(9, 0)], True, "bfloat16"),  # otherwise bfloat16 ...
        ({}, [(8, 6)], True, "bfloat16"),
        ({"dtype": "float32"}, [(7, 0)], True, "float16"),  # ... float16 where a GPU lacks bfloat16
        ({"dtype": "bfloat16"}, [(8, 0), (7, 5)], True, "float16"),
        ({"dtype": "bfloat16"}, None, True, "float32"),  # on CPU
        ({"dtype": "float32"}, None, False, "bfloat16"),  # TensorRT-LLM: never float32, anywhere
        ({"dtype": "float16"}, [], False, "float16"),
    ],
)
def test_auto_precision_resolves_from_checkpoint_and_gpus(
    stored: dict[str, object], gpus: list[tuple[int, int]] | None, allow_float32: bool, expected: str, tmp_path: Path
) -> None:
    model = _checkpoint(tmp_path, **stored)
    assert resolve_precision("auto", model, gpus, allow_float32=allow_float32) == expected
    assert resolve_precision("float32", model, gpus, allow_float32=allow_float32) == "float32", "explicit stays"


def test_auto_precision_is_the_default_and_backend_defaults_validate(tmp_path: Path) -> None:
    assert compose_config().fp_precision == "auto"
    for backend in ("tensorrt", "vllm"):
        result = run_lem(f"backend={backend}", "dry_run=true", cwd=tmp_path)
        assert result.returncode == 0 and "valid: 0 error(s)" in result.stderr, result.stderr


@pytest.mark.slow
def test_pytorch_records_the_resolved_precision(lem_cache: Path) -> None:
    from lem.backends.base import create_backend
    from lem.model.tiny import ensure_tiny_model

    backend = create_backend(compose_config(f"cache_dir={lem_cache}"), str(ensure_tiny_model(lem_cache)), [])
    try:
        info = backend.load()
    finally:
        backend.close()
    assert info.settings["fp_precision"] == "float32" and info.settings["dtype"] == "torch.float32", "CPU: float32"


# --- escape hatches ------------------------------------------------------------------------------------------------


def test_every_escape_hatch_has_a_keyword_reader() -> None:
    hatches = {name: set(escape_hatch_fields(spec.config)) for name, spec in BACKENDS.items()}
    assert hatches == {
        "pytorch": {"extra", "extra_load"},
        "vllm": {"extra"},
        "tensorrt": {"extra_build_args", "extra_runtime_args"},
    }
    assert all(set(BACKENDS[name].keyword_readers) == fields for name, fields in hatches.items())


def test_escape_hatch_overrides_are_rewritten_as_typed() -> None:
    typed = ["-m", "backend.extra.x=1,2", "+backend.extra.y=2", "backend.batch_size=3", "backend.extra_load.z.w=a=b"]
    typed += ["--cfg", "job", "backend.extra={a: 1}", "++backend.extra_runtime_args.q=1", "~backend.extra.x"]
    assert as_typed(typed) == [
        "-m",
        "++backend.extra.x=1,2",
        "+backend.extra.y=2",
        "backend.batch_size=3",
        "++backend.extra_load.z.w=a=b",
        "--cfg",
        "job",
        "backend.extra={a: 1}",
        "++backend.extra_runtime_args.q=1",
        "~backend.extra.x",
    ]


def test_escape_hatches_work_as_typed_without_plus(tmp_path: Path) -> None:
    single = run_lem(
        "backend.extra.max_length=200", "backend.extra_load.output_attentions=false", "--cfg", "job", cwd=tmp_path
    )
    assert single.returncode == 0, single.stderr
    assert "max_length: 200" in single.stdout and "output_attentions: false" in single.stdout
    sweep = run_lem("-m", "backend=vllm", "backend.extra.max_logprobs=5,6", "dry_run=true", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    assert sweep.stderr.count("valid: 0 error(s)") == 2


def test_validation_imports_no_engine_unless_a_hatch_is_filled() -> None:
    """Checking escape-hatch keys imports the engine; a config without such keys validates without torch or vllm."""
    code = (
        "import sys\n"
        "from lem.config.machine import probe_machine\n"
        "from lem.config.rules import validate\n"
        "from lem.config.store import compose_config\n"
        "for backend in ('pytorch', 'vllm', 'tensorrt'):\n"
        "    validate(compose_config(f'backend={backend}'), probe_machine())\n"
        "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'tensorrt_llm') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_extra_load_keys_are_checked_against_from_pretrained_and_the_model_config(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path)
    ok = validate(compose_config(f"model={model}", "+backend.extra_load.num_hidden_layers=1"), NO_GPU)
    assert [f.code for f in ok if f.param == "backend.extra_load"] == ["ENGINE_ARGS_CHECKED"]
    typo = validate(compose_config(f"model={model}", "+backend.extra_load.num_hiden_layers=1"), NO_GPU)
    (finding,) = [f for f in typo if f.param == "backend.extra_load.num_hiden_layers"]
    assert finding.severity == "error" and finding.message.endswith(
        "did you mean backend.extra_load.num_hidden_layers?"
    )
    assert "from_pretrained() and the llama config" in finding.message
    unknown_model = compose_config("model=someone/not-downloaded", "+backend.extra_load.num_hidden_layers=1")
    (unread,) = [f for f in validate(unknown_model, NO_GPU) if f.param == "backend.extra_load.num_hidden_layers"]
    assert unread.severity == "warning" and "which lem could not read before the model is prepared" in unread.message
