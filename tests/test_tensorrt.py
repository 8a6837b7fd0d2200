"""The TensorRT-LLM backend, proven by contract: TensorRT-LLM cannot be installed here.

tests/contracts/tensorrt_llm_api.json records the TensorRT-LLM 1.2.1 API (keywords and their types, enums, import
locations, output fields). Three kinds of test stand on it:
1. the translation, field by field, for every TensorRTConfig field;
2. the contract check: every keyword lem passes exists on the object it goes to, with a compatible value type;
3. a test double of the tensorrt_llm package, generated from the contract (constructors accept exactly the recorded
   keywords, outputs carry exactly the recorded fields), driving the whole flow through the real harness.
Each checker is shown to catch a deliberate mistake.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import importlib.machinery
import importlib.util
import inspect
import json
import re
import shutil
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, compose_config, load_module, run_lem

from lem.backends.tensorrt.api import API_MODULES, LLM_ARGS
from lem.backends.tensorrt.backend import request_records
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.tensorrt.engine_cache import (
    MARKER,
    EngineCache,
    build_inputs,
    cache_key,
    engine_cache_root,
)
from lem.backends.tensorrt.translate import (
    ENUM_VALUES,
    NESTED,
    OBJECTS,
    EnumMember,
    extra_targets,
    field_targets,
    translate,
)
from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.config.schema import ExperimentConfig
from lem.errors import LemError
from lem.harness import run_experiment
from lem.model.resolve import cache_root
from lem.results.reader import read_result
from lem.results.schema import Result

CONTRACT_FILE = REPO / "tests" / "contracts" / "tensorrt_llm_api.json"
CONTRACT: dict[str, Any] = json.loads(CONTRACT_FILE.read_text())
MODEL = "/models/some-llama"
BOS = 1  # special tokens a Llama tokenizer adds to a prompt


def trt_config(*overrides: str) -> ExperimentConfig:
    """A config composed through real Hydra with backend=tensorrt (float16: float32 is not supported)."""
    return compose_config("backend=tensorrt", "fp_precision=float16", *overrides)


# --- 1. The translation, field by field -------------------------------------------------------------------------

ABSENT = object()  # the keyword is left out (TensorRT-LLM's default applies)
UNCHANGED = object()  # the whole translation equals the default config's: the field never reaches TensorRT-LLM


def _enum_cases(field_name: str) -> list[tuple[str, Any]]:
    """Every choice of an enum-valued field, with the member written out by hand (not read from ENUM_VALUES)."""
    members = {
        "quantization": {
            "none": ABSENT,
            "fp8": "FP8",
            "int8_sq": "W8A8_SQ_PER_CHANNEL",
            "int8_weight_only": "W8A16",
            "int4_awq": "W4A16_AWQ",
            "int4_gptq": "W4A16_GPTQ",
        },
        "kv_cache_quantization": {"fp8": "FP8", "int8": "INT8", "null": ABSENT},
        "kv_cache_type": {"paged": "PAGED", "continuous": "CONTINUOUS"},
        "batching_type": {"inflight": "INFLIGHT", "static": "STATIC"},
        "scheduler_policy": {
            "max_utilization": "MAX_UTILIZATION",
            "guaranteed_no_evict": "GUARANTEED_NO_EVICT",
            "static_batch": "STATIC_BATCH",
        },
    }[field_name]
    enum_name = {
        "quantization": "QuantAlgo",
        "kv_cache_quantization": "QuantAlgo",
        "kv_cache_type": "KVCacheType",
        "batching_type": "BatchingType",
        "scheduler_policy": "CapacitySchedulerPolicy",
    }[field_name]
    return [(value, member if member is ABSENT else EnumMember(enum_name, member)) for value, member in members.items()]


#: TensorRTConfig field → [(value as a Hydra override, expected value at the field's target)]. Fields whose target is
#: not an API keyword expect UNCHANGED and are covered further by the named tests.
CASES: dict[str, list[tuple[str, Any]]] = {
    "max_batch_size": [("4", 4)],
    "max_num_tokens": [("2048", 2048), ("null", ABSENT)],
    "max_input_len": [("100", 100), ("null", 128 + BOS)],  # null = max_input_tokens (128) + the tokenizer's BOS
    "max_seq_len": [("300", 300), ("null", 128 + BOS + 64)],  # null = that + max_output_tokens
    "max_beam_width": [("2", 2)],
    "builder_opt_level": [("3", UNCHANGED)],  # unsupported in 1.2.1: never passed
    "strongly_typed": [("false", False), ("true", True)],
    "multiple_profiles": [("true", True)],
    "tp_size": [("2", 2)],
    "pp_size": [("2", 2)],
    "quantization": _enum_cases("quantization"),
    "kv_cache_quantization": _enum_cases("kv_cache_quantization"),
    "quantized_checkpoint": [("true", UNCHANGED)],  # read by lem's rules only
    "calib_dataset": [("/data/calib.jsonl", "/data/calib.jsonl"), ("null", ABSENT)],
    "calib_batches": [("16", 16)],
    "calib_batch_size": [("4", 4)],
    "calib_max_seq_length": [("256", 256)],
    "kv_cache_type": _enum_cases("kv_cache_type"),
    "kv_cache_free_gpu_memory_fraction": [("0.5", 0.5), ("null", ABSENT)],
    "kv_cache_max_tokens": [("4096", 4096)],
    "enable_kv_cache_reuse": [("true", True), ("false", False)],  # passed when false: TensorRT-LLM's default is true
    "enable_chunked_context": [("true", True)],
    "use_paged_context_fmha": [("false", False)],
    "gemm_plugin": [("float16", "float16"), ("null", None)],  # None disables a plugin, so it is passed on
    "gpt_attention_plugin": [("bfloat16", "bfloat16"), ("null", None)],
    "batching_type": _enum_cases("batching_type"),
    "scheduler_policy": _enum_cases("scheduler_policy"),
    "engine_cache_dir": [("/tmp/engines", UNCHANGED)],  # test_engine_cache_dir
    "force_rebuild": [("true", UNCHANGED)],  # test_flow_builds_reuses_and_force_rebuilds
    "reuse": [("false", UNCHANGED)],  # lem's engine reuse across jobs (tests/test_reuse.py)
    "extra_build_args": [("+backend.extra_build_args.opt_num_tokens=256", {"opt_num_tokens": 256})],
    "extra_runtime_args": [("+backend.extra_runtime_args.enable_tqdm=true", {"enable_tqdm": True})],
}


def _override(field_name: str, value: str) -> str:
    return value if value.startswith("+") else f"backend.{field_name}={value}"


def test_every_field_has_a_translation_case() -> None:
    """A new TensorRTConfig field without a case here fails this test."""
    fields = {f.name for f in dataclasses.fields(TensorRTConfig)} - {"name"}
    assert set(CASES) == fields


def test_every_enum_choice_has_a_member() -> None:
    for f in dataclasses.fields(TensorRTConfig):
        if f.name in ENUM_VALUES:
            assert set(ENUM_VALUES[f.name][1]) == set(f.metadata["choices"]), f.name


@pytest.mark.parametrize(
    ("field_name", "value", "expected"),
    [(name, value, expected) for name, cases in CASES.items() for value, expected in cases],
)
def test_field_translation(field_name: str, value: str, expected: Any) -> None:
    config = trt_config(_override(field_name, value))
    kwargs = translate(config, MODEL, BOS)
    if expected is UNCHANGED:
        assert kwargs == translate(trt_config(), MODEL, BOS)
        return
    if field_name in extra_targets():
        obj = extra_targets()[field_name]
        assert kwargs[obj].items() >= expected.items()
        return
    obj, keyword = field_targets()[field_name]
    assert obj in OBJECTS and CONTRACT["objects"][obj]  # the target named by maps_to exists
    if expected is ABSENT:
        assert keyword not in kwargs[obj]
    else:
        assert kwargs[obj][keyword] == expected
        assert type(kwargs[obj][keyword]) is type(expected)


def test_llm_gets_model_tokenizer_dtype_and_perf_metrics() -> None:
    llm = translate(trt_config("fp_precision=bfloat16"), MODEL, BOS)["LLM"]
    assert llm["model"] == llm["tokenizer"] == MODEL
    assert llm["dtype"] == "bfloat16" and llm["return_perf_metrics"] is True


def test_engine_cache_dir() -> None:
    assert engine_cache_root(trt_config("backend.engine_cache_dir=/tmp/engines")) == Path("/tmp/engines")
    assert engine_cache_root(trt_config("cache_dir=/tmp/lem")) == Path("/tmp/lem/trt_engines")
    assert engine_cache_root(trt_config()) == cache_root(None) / "trt_engines"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            [],
            {
                "max_tokens": 64,
                "min_tokens": 64,
                "ignore_eos": True,
                "top_k": 1,
                "seed": 42,
                "return_perf_metrics": True,
                "detokenize": False,
            },
        ),
        (
            ["fixed_length=false", "max_output_tokens=16", "random_seed=7"],
            {"max_tokens": 16, "top_k": 1, "seed": 7, "return_perf_metrics": True, "detokenize": False},
        ),
        (
            ["decoder.preset=standard", "decoder.repetition_penalty=1.1"],
            {"temperature": 1.0, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.1},
        ),
        (
            ["decoder.preset=creative", "decoder.min_p=0.05"],
            {"temperature": 1.2, "top_k": 0, "top_p": 0.95, "min_p": 0.05},
        ),
        (["decoder.repetition_penalty=1.2"], {"top_k": 1, "repetition_penalty": 1.2}),
    ],
)
def test_sampling_params(overrides: list[str], expected: dict[str, Any]) -> None:
    sampling = translate(trt_config(*overrides), MODEL, BOS)["SamplingParams"]
    assert sampling.items() >= expected.items()
    if "fixed_length=false" in overrides:
        assert "min_tokens" not in sampling and "ignore_eos" not in sampling


# --- 2. The contract check --------------------------------------------------------------------------------------


def _declared(obj: str, contract: dict[str, Any]) -> dict[str, Any]:
    spec = contract["objects"][obj]
    return spec.get("kwargs") or spec["fields"]


def _matches(value: Any, alternative: str, contract: dict[str, Any]) -> bool:
    """Whether `value` is an instance of one recorded type alternative (e.g. "int", "enum:QuantAlgo", "list[int]")."""
    scalars: dict[str, Callable[[Any], bool]] = {
        "None": lambda v: v is None,
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "Path": lambda v: isinstance(v, str | Path),
        "plugin_dtype": lambda v: v in contract["objects"]["PluginConfig"]["plugin_dtype_literal"],
    }
    if alternative in scalars:
        return scalars[alternative](value)
    if alternative.startswith("enum:"):
        name = alternative.removeprefix("enum:")
        return isinstance(value, EnumMember) and value.enum == name and value.member in contract["enums"][name]
    if inner := re.fullmatch(r"list\[(\w+)\]", alternative):
        return isinstance(value, list) and all(_matches(v, inner.group(1), contract) for v in value)
    if alternative == "dict":
        return isinstance(value, dict)
    if alternative == "dict[str,str]":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return False  # object:X and library types: lem passes those only as nested objects (see NESTED)


def compatible(value: Any, recorded_type: str, contract: dict[str, Any]) -> bool:
    """Whether `value` fits a recorded type such as "int|None" or "literal:auto|float16|None"."""
    head, literal, choices = recorded_type.partition("literal:")
    if literal and (value in choices.split("|") or (value is None and "None" in choices.split("|"))):
        return True
    return any(_matches(value, alternative, contract) for alternative in head.split("|") if alternative)


def contract_violations(kwargs: dict[str, dict[str, Any]], contract: dict[str, Any]) -> list[str]:
    """Every keyword that the recorded API lacks, or whose value does not fit the recorded type; [] when all fit."""
    problems = []
    for obj, args in kwargs.items():
        declared = _declared(obj, contract)
        for keyword, value in args.items():
            if keyword not in declared:
                problems.append(f"{obj}.{keyword}: no such keyword")
            elif not compatible(value, declared[keyword]["type"], contract):
                problems.append(f"{obj}.{keyword}={value!r}: not a {declared[keyword]['type']}")
    return problems


def _all_configs() -> list[ExperimentConfig]:
    """The default, every case above, every choice of every field with choices, and the decoder presets."""
    overrides = [[_override(name, value)] for name, cases in CASES.items() for value, _ in cases]
    for f in dataclasses.fields(TensorRTConfig):
        overrides += [[f"backend.{f.name}={choice}"] for choice in f.metadata["choices"] or ()]
    overrides += [[f"decoder.preset={p}"] for p in ("standard", "creative", "factual")]
    overrides += [["fixed_length=false"], ["decoder.preset=standard", "decoder.min_p=0.1"]]
    unique = dict.fromkeys(tuple(o) for o in [[], *overrides])
    return [trt_config(*o) for o in unique]


def test_every_keyword_lem_passes_is_in_the_contract() -> None:
    configs = _all_configs()
    assert len(configs) > 40
    for config in configs:
        assert contract_violations(translate(config, MODEL, BOS), CONTRACT) == [], config.backend


def test_nested_objects_are_passed_where_the_contract_takes_them() -> None:
    for child, (parent, keyword) in NESTED.items():
        recorded = _declared(parent, CONTRACT)[keyword]["type"]
        assert f"object:{child}" in recorded.split("|"), (parent, keyword, recorded)


def test_backend_imports_each_name_from_where_the_contract_says() -> None:
    assert CONTRACT["imports"]["names"] == API_MODULES
    args_class = CONTRACT["llm_constructor"]["args_class"]
    assert (args_class["module"], args_class["name"]) == LLM_ARGS


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"BuildConfig": {"opt_level": 3}}, "BuildConfig.opt_level: no such keyword"),  # absent in 1.2.1
        ({"LLM": {"enable_chunked_context": True}}, "LLM.enable_chunked_context: no such keyword"),
        ({"SamplingParams": {"beam_width": 2}}, "SamplingParams.beam_width: no such keyword"),
        ({"BuildConfig": {"max_batch_size": "8"}}, "BuildConfig.max_batch_size='8': not a int"),
        ({"BuildConfig": {"strongly_typed": 1}}, "not a bool"),
        ({"KvCacheConfig": {"max_tokens": True}}, "not a int|None"),
        ({"QuantConfig": {"quant_algo": "FP8"}}, "not a enum:QuantAlgo|None"),
        ({"QuantConfig": {"quant_algo": EnumMember("QuantAlgo", "INT4_AWQ")}}, "not a enum:QuantAlgo|None"),
        ({"LLM": {"batching_type": EnumMember("QuantAlgo", "FP8")}}, "not a enum:BatchingType|None"),
        ({"PluginConfig": {"gemm_plugin": "int8"}}, "not a literal:"),
        ({"PluginConfig": {"gpt_attention_plugin": "fp8"}}, "not a plugin_dtype|None"),
        ({"LLM": {"kv_cache_config": {"max_tokens": 10}}}, "not a object:KvCacheConfig"),
    ],
)
def test_contract_check_catches_a_wrong_keyword_or_type(kwargs: dict[str, dict[str, Any]], problem: str) -> None:
    (found,) = contract_violations(kwargs, CONTRACT)
    assert problem in found


def test_contract_check_catches_a_wrong_extra_arg() -> None:
    kwargs = translate(trt_config("+backend.extra_build_args.builder_opt_level=3"), MODEL, BOS)
    assert contract_violations(kwargs, CONTRACT) == ["BuildConfig.builder_opt_level: no such keyword"]


# --- 3. A test double of tensorrt_llm, generated from the contract -----------------------------------------------


@dataclasses.dataclass
class DoubleState:
    """What the double saw: engines built from a checkpoint, engines loaded, LLMs shut down, every construction."""

    builds: int = 0
    loads: int = 0
    shutdowns: int = 0
    constructed: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)

    def kwargs_of(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for obj, kwargs in self.constructed if obj == name]


CHECK = load_module(REPO / "scripts" / "check_trtllm_contract.py", "check_trtllm_contract")


def _parameter(name: str, spec: dict[str, Any], kind: inspect._ParameterKind) -> inspect.Parameter:
    """A parameter with its recorded default ("<required>": none)."""
    default = spec.get("default")
    return inspect.Parameter(name, kind, default=inspect.Parameter.empty if default == "<required>" else default)


def _keyword_signature(declared: dict[str, Any]) -> inspect.Signature:
    """A signature advertising `declared` keywords with their recorded defaults, so that introspection (the contract
    check, lem's escape-hatch validation) reads the double as it reads TensorRT-LLM."""
    return inspect.Signature(
        [_parameter(name, spec, inspect.Parameter.KEYWORD_ONLY) for name, spec in declared.items()]
    )


def install_double(monkeypatch: pytest.MonkeyPatch, contract: dict[str, Any], workspace: Path) -> DoubleState:
    """Put a tensorrt_llm double into sys.modules (undone after the test), built only from `contract`.

    Constructors accept exactly the recorded keywords (others: TypeError) and reject lem's EnumMember markers and
    objects of an undeclared type; their signatures advertise those keywords. LLM takes the recorded constructor's
    parameters and **kwargs, whose keywords the recorded args class declares; outputs are classes with exactly the
    recorded fields. Building from a checkpoint writes a fake engine folder; a folder with an engine config.json is
    loaded instead. A prompt longer than the engine's max_input_len (special tokens counted, as TensorRT-LLM counts
    them) is refused. Token ids are deterministic.
    """
    state = DoubleState()
    enums = {
        name: enum.Enum(name, {m: m for m in members})
        for name, members in contract["enums"].items()
        if isinstance(members, list)
    }
    metric_names = enum.Enum("MetricNames", {k: k.lower() for k in contract["outputs"]["metrics_dict_keys"]["keys"]})
    classes: dict[str, type] = {}

    def check(owner: str, declared: dict[str, Any], kwargs: dict[str, Any]) -> None:
        for key, value in kwargs.items():
            if key not in declared:
                raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {key!r}")
            if isinstance(value, EnumMember):
                raise TypeError(f"{owner}.{key}: {value!r} is lem's marker, not a TensorRT-LLM enum")
            named = re.findall(r"(?:enum|object):(\w+)", declared[key]["type"])
            kinds = tuple(enums.values()) + tuple(classes.values())
            if isinstance(value, kinds) and type(value).__name__ not in named:
                raise TypeError(f"{owner}.{key}: a {type(value).__name__}, declared {declared[key]['type']}")

    def config_class(name: str, declared: dict[str, Any]) -> type:
        def __init__(self: Any, **kwargs: Any) -> None:
            check(name, declared, kwargs)
            state.constructed.append((name, kwargs))
            for key, spec in declared.items():
                setattr(self, key, kwargs.get(key, spec.get("default")))

        cls = type(name, (), {"__init__": __init__})
        cls.__signature__ = _keyword_signature(declared)  # type: ignore[attr-defined]
        return cls

    for name in ("BuildConfig", "PluginConfig", "KvCacheConfig", "SchedulerConfig", "QuantConfig", "CalibConfig"):
        classes[name] = config_class(name, contract["objects"][name]["fields"])
    classes["SamplingParams"] = config_class("SamplingParams", contract["objects"]["SamplingParams"]["fields"])
    outputs = contract["outputs"]

    def output_class(kind: str) -> type:
        fields = tuple(outputs[kind])

        def __init__(self: Any, **values: Any) -> None:
            for field in fields:
                setattr(self, field, values.get(field))

        return type(kind, (), {"__slots__": fields, "__init__": __init__})

    output_classes = {kind: output_class(kind) for kind in outputs["modules"]}
    llm_kwargs = contract["objects"]["LLM"]["kwargs"]
    constructor = CHECK.recorded_parameters(contract["llm_constructor"]["signature"])
    args_class = contract["llm_constructor"]["args_class"]
    llm_args = config_class(args_class["name"], {k: v for k, v in llm_kwargs.items() if k not in constructor})
    generate_parameters = CHECK.recorded_parameters(contract["objects"]["LLM"]["methods"]["generate"])

    class LLM:
        def __init__(self, model: str, **kwargs: Any) -> None:
            check("LLM", llm_kwargs, {"model": model, **kwargs})
            state.constructed.append(("LLM", {"model": model, **kwargs}))
            from transformers import AutoTokenizer

            self._kwargs = kwargs
            engine_config = json.loads((Path(model) / "config.json").read_text())
            if {"pretrained_config", "build_config"} <= engine_config.keys():
                assert (Path(model) / "rank0.engine").is_file(), "engine folder without its engine"
                state.loads += 1
                self._engine_dir = Path(model)
            else:
                build_config = kwargs.get("build_config")
                assert isinstance(build_config, classes["BuildConfig"]), "built without a BuildConfig"
                state.builds += 1
                self._engine_dir = workspace / f"engine-{state.builds}"
                self._engine_dir.mkdir(parents=True)
                built = {
                    "pretrained_config": {"dtype": kwargs.get("dtype")},
                    "build_config": {"max_input_len": build_config.max_input_len},
                }
                (self._engine_dir / "config.json").write_text(json.dumps(built))
                (self._engine_dir / "rank0.engine").write_bytes(b"engine")
            engine = json.loads((self._engine_dir / "config.json").read_text())
            self._max_input_len = engine["build_config"]["max_input_len"]
            self._tokenizer = AutoTokenizer.from_pretrained(kwargs.get("tokenizer") or model)

        @property
        def workspace(self) -> Path:
            return workspace

        def save(self, engine_dir: str) -> None:
            shutil.copytree(self._engine_dir, engine_dir, dirs_exist_ok=True)

        def generate(self, *args: Any, **kwargs: Any) -> Any:
            for key in kwargs:
                if key not in generate_parameters:
                    raise TypeError(f"generate() got an unexpected keyword argument {key!r}")
            bound = {**dict(zip(generate_parameters, args, strict=False)), **kwargs}
            params = bound.get("sampling_params") or classes["SamplingParams"]()
            inputs = bound["inputs"]
            prompts = [inputs] if isinstance(inputs, str) else list(inputs)
            results = [self._respond(i, prompt, params) for i, prompt in enumerate(prompts)]
            return results[0] if isinstance(inputs, str) else results

        def _respond(self, index: int, prompt: str, params: Any) -> Any:
            ids = self._tokenizer(prompt, add_special_tokens=params.add_special_tokens)["input_ids"]
            if len(ids) > self._max_input_len:
                raise ValueError(f"The prompt length ({len(ids)}) exceeds the max input length ({self._max_input_len})")
            stop_at = 1 + sum(ids) % params.max_tokens  # where this prompt's EOS would end generation
            count = params.max_tokens if params.ignore_eos else max(stop_at, params.min_tokens or 0)
            token_ids = [(sum(ids) + 7 * k) % len(self._tokenizer) for k in range(count)]
            arrival = datetime.timedelta(seconds=100)
            first = arrival + datetime.timedelta(milliseconds=5 * (index + 1))
            last = first + datetime.timedelta(milliseconds=count)
            timing = dict(
                zip(outputs["RequestPerfMetrics"]["timing_metrics"], (arrival, arrival, first, last), strict=True)
            )
            perf = types.SimpleNamespace(timing_metrics=types.SimpleNamespace(**timing))
            completion = output_classes["CompletionOutput"](
                index=0,
                text="",
                token_ids=token_ids,
                finish_reason="length",
                request_perf_metrics=perf if params.return_perf_metrics else None,
            )
            metrics = {
                metric_names.TTFT: (first - arrival).total_seconds(),
                metric_names.E2E: (last - arrival).total_seconds(),
            }
            return output_classes["RequestOutput"](
                request_id=index,
                prompt=prompt,
                prompt_token_ids=ids,
                outputs=[completion],
                finished=True,
                metrics_dict=metrics if self._kwargs.get("return_perf_metrics") else None,
            )

        def shutdown(self) -> None:
            state.shutdowns += 1

    named = inspect.Parameter.POSITIONAL_OR_KEYWORD
    LLM.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [_parameter(name, llm_kwargs[name], named) for name in constructor]
        + [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    )
    generate = [inspect.Parameter("self", named), inspect.Parameter(generate_parameters[0], named)]
    generate += [inspect.Parameter(name, named, default=None) for name in generate_parameters[1:]]
    LLM.generate.__signature__ = inspect.Signature(generate)  # type: ignore[attr-defined]

    exported = {**classes, **enums, **output_classes, "LLM": LLM}
    members: dict[str, dict[str, Any]] = {"tensorrt_llm": {"__version__": contract["source"]["tag"].lstrip("v")}}
    for name, module_name in {**contract["imports"]["names"], **outputs["modules"]}.items():
        members.setdefault(module_name, {})[name] = exported[name]
    members.setdefault(args_class["module"], {})[args_class["name"]] = llm_args
    for module_name in sorted(members, key=lambda m: m.count(".")):
        module = types.ModuleType(module_name)
        module.__spec__ = importlib.machinery.ModuleSpec(module_name, None, is_package=True)
        module.__path__ = []
        vars(module).update(members[module_name])
        parent, _, child = module_name.rpartition(".")
        if parent:
            if parent not in sys.modules:
                pytest.fail(f"{parent} is not installed before {module_name}")
            setattr(sys.modules[parent], child, module)
        monkeypatch.setitem(sys.modules, module_name, module)
    return state


QUICK = [
    "num_input_prompts=6",
    "max_output_tokens=8",
    "warmup.mode=fixed",
    "warmup.count=2",
    "baseline.enabled=false",
    "timeseries.enabled=false",
]


def _run(config: ExperimentConfig, job_dir: Path) -> Result:
    """The real harness, then the results.json it wrote, read back strictly."""
    run_experiment(config, validate(config, probe_machine()), job_dir)
    return read_result(job_dir / "results.json")


def _failed_run(config: ExperimentConfig, job_dir: Path) -> Result:
    with pytest.raises(LemError):
        run_experiment(config, validate(config, probe_machine()), job_dir)
    result = read_result(job_dir / "results.json")
    assert result.status == "failed" and result.error is not None
    return result


def _flow_config(lem_cache: Path, engines: Path, *overrides: str) -> ExperimentConfig:
    return trt_config(f"cache_dir={lem_cache}", f"backend.engine_cache_dir={engines}", *QUICK, *overrides)


@pytest.mark.slow
def test_flow_builds_reuses_and_force_rebuilds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    state = install_double(monkeypatch, CONTRACT, tmp_path / "workspace")
    engines = tmp_path / "engines"
    first = _run(_flow_config(lem_cache, engines), tmp_path / "job1")
    assert first.status == "ok" and first.backend is not None and first.metrics is not None
    settings = first.backend["settings"]
    assert settings["built"] is True and settings["build_s"] >= 0 and state.builds == 1 and state.loads == 0
    engine_dir = Path(settings["engine_dir"])
    assert engine_dir.parent == engines and (engine_dir / MARKER).is_file() and (engine_dir / "rank0.engine").is_file()
    assert settings["tensorrt_llm_version"] == "1.2.1"
    assert first.metrics.num_requests == 6 and first.metrics.output_tokens == 6 * 8, "fixed length: 8 tokens each"
    assert first.metrics.timing_source == "request_perf_metrics" and first.metrics.ttft_s is not None
    assert first.metrics.ttft_s.p50 == pytest.approx(0.0175)  # the double's first tokens: 5, 10, ... 30 ms
    assert state.kwargs_of("LLM")[0]["workspace"] == str(engines), "TensorRT-LLM builds on the cache's disk"
    (build_config,) = state.kwargs_of("BuildConfig")
    assert build_config["max_batch_size"] == 8 and build_config["max_seq_len"] == 128 + 1 + 8, "BOS counted"
    assert len(state.kwargs_of("PluginConfig")) == 1 and state.kwargs_of("SamplingParams")[0]["min_tokens"] == 8

    second = _run(_flow_config(lem_cache, engines), tmp_path / "job2")
    assert second.backend is not None and second.metrics is not None
    assert second.backend["settings"]["built"] is False and second.backend["settings"]["build_s"] is None
    assert second.backend["settings"]["engine_dir"] == str(engine_dir)
    assert state.builds == 1 and state.loads == 1, "reused, not rebuilt"
    assert len(state.kwargs_of("BuildConfig")) == 1, "no build objects when an engine is loaded"
    assert state.kwargs_of("LLM")[-1]["model"] == str(engine_dir) and "workspace" not in state.kwargs_of("LLM")[-1]
    assert second.metrics.output_tokens == first.metrics.output_tokens
    assert second.metrics.input_tokens == first.metrics.input_tokens > 6

    third = _run(_flow_config(lem_cache, engines, "backend.force_rebuild=true"), tmp_path / "job3")
    assert third.backend is not None and third.backend["settings"]["built"] is True
    assert third.backend["settings"]["engine_dir"] == str(engine_dir) and state.builds == 2
    assert state.shutdowns == 3, "every LLM was shut down"
    assert sorted(p.name for p in engines.iterdir() if not p.name.endswith(".lock")) == [engine_dir.name]


@pytest.mark.slow
def test_flow_counts_tokens_from_ids_without_fixed_length(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    install_double(monkeypatch, CONTRACT, tmp_path / "workspace")
    config = _flow_config(lem_cache, tmp_path / "engines", "fixed_length=false")
    result = _run(config, tmp_path / "job")
    assert result.metrics is not None
    from transformers import AutoTokenizer

    from lem.model.tiny import ensure_tiny_model
    from lem.prompts import load_prompts

    tokenizer = AutoTokenizer.from_pretrained(ensure_tiny_model(lem_cache))
    prompts = load_prompts(
        name="builtin",
        sample_size=None,
        split="train",
        column=None,
        num_prompts=6,
        seed=42,
        max_input_tokens=128,
        tokenizer=tokenizer,
    )
    prompt_ids = [tokenizer(p)["input_ids"] for p in prompts]
    assert result.metrics.input_tokens == sum(len(ids) for ids in prompt_ids)
    assert result.metrics.output_tokens == sum(1 + sum(ids) % 8 for ids in prompt_ids), "the double's EOS positions"


def _contract_without(path: tuple[str, ...], name: str) -> dict[str, Any]:
    changed = copy.deepcopy(CONTRACT)
    holder = changed
    for key in path:
        holder = holder[key]
    if isinstance(holder, list):
        holder.remove(name)
    else:
        del holder[name]
    return changed


@pytest.mark.slow
def test_double_catches_a_keyword_the_api_lacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    """Were enable_chunked_prefill not an LLM keyword, the run would fail at load: the double checks keywords."""
    contract = _contract_without(("objects", "LLM", "kwargs"), "enable_chunked_prefill")
    install_double(monkeypatch, contract, tmp_path / "workspace")
    result = _failed_run(_flow_config(lem_cache, tmp_path / "engines"), tmp_path / "job")
    assert result.error is not None and result.error.phase == "load" and result.error.type == "TypeError"
    assert "enable_chunked_prefill" in result.error.message
    assert not list((tmp_path / "engines").glob("*/" + MARKER)), "no engine cached from a failed build"


@pytest.mark.slow
def test_double_catches_a_missing_output_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    """Were token_ids not a CompletionOutput field, the run would fail at its first generate, saying so."""
    contract = _contract_without(("outputs", "CompletionOutput"), "token_ids")
    install_double(monkeypatch, contract, tmp_path / "workspace")
    result = _failed_run(_flow_config(lem_cache, tmp_path / "engines"), tmp_path / "job")
    assert result.error is not None and result.error.phase == "warmup"
    assert "has no 'token_ids'" in result.error.message and "1.2.1" in result.error.message


def test_gpus_other_than_the_first_visible_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    from lem.backends.tensorrt.backend import TensorRTBackend

    install_double(monkeypatch, CONTRACT, tmp_path / "workspace")
    backend = TensorRTBackend(_flow_config(lem_cache, tmp_path / "engines"), str(tmp_path), [1])
    with pytest.raises(LemError, match=r"gpus=\[1\]: .*CUDA_VISIBLE_DEVICES=1 and gpus=null"):
        backend.load()


# --- Timings read from TensorRT-LLM's outputs ---------------------------------------------------------------------


def _output(ids: int, perf: tuple[float, float] | None = None, metrics: dict[Any, float] | None = None) -> Any:
    timing = None
    if perf is not None:
        arrival = datetime.timedelta(seconds=50)
        timing = types.SimpleNamespace(
            timing_metrics=types.SimpleNamespace(
                arrival_time=arrival,
                first_token_time=arrival + datetime.timedelta(seconds=perf[0]),
                last_token_time=arrival + datetime.timedelta(seconds=perf[1]),
            )
        )
    completion = types.SimpleNamespace(token_ids=list(range(ids)), request_perf_metrics=timing)
    return types.SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[completion], metrics_dict=metrics)


class _Metric(enum.Enum):
    TTFT = "ttft"
    E2E = "e2e"


def test_request_timings_from_perf_metrics_then_metrics_dict_then_batch() -> None:
    records, source = request_records([_output(4, perf=(0.1, 0.5)), _output(2, perf=(0.2, 0.3))], batch_s=1.0)
    assert source == "request_perf_metrics"
    assert [(r.first_token_s, r.finished_s, r.output_tokens, r.input_tokens) for r in records] == [
        (0.1, 0.5, 4, 3),
        (0.2, 0.3, 2, 3),
    ]
    metrics = {_Metric.TTFT: 0.25, _Metric.E2E: 0.75}
    records, source = request_records([_output(4, perf=(0.1, 0.5), metrics=metrics), _output(2, metrics=metrics)], 1.0)
    assert source == "metrics_dict" and [(r.first_token_s, r.finished_s) for r in records] == [(0.25, 0.75)] * 2
    records, source = request_records([_output(4, perf=(0.1, 0.5)), _output(2)], batch_s=1.0)
    assert source == "batch" and [(r.first_token_s, r.finished_s) for r in records] == [(None, 1.0)] * 2
    assert records[0].output_token_ids == (0, 1, 2, 3)


# --- The engine cache ------------------------------------------------------------------------------------------


def _model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "model.safetensors").write_bytes(b"0" * 100)
    return folder


def _key(model: Path, *overrides: str, version: str = "1.2.1") -> str:
    config = trt_config(*overrides)
    return cache_key(build_inputs(config, str(model), translate(config, str(model), BOS), version))


def test_cache_key_changes_with_what_shapes_the_engine_only(tmp_path: Path) -> None:
    model = _model_folder(tmp_path)
    base = _key(model)
    shaping = [
        ["fp_precision=bfloat16"],
        ["backend.quantization=int8_weight_only"],
        ["backend.kv_cache_quantization=fp8"],
        ["backend.calib_batches=8"],
        ["backend.max_batch_size=4"],
        ["max_output_tokens=32"],  # max_seq_len follows the workload
        ["backend.gemm_plugin=null"],
        ["backend.multiple_profiles=true"],
        ["backend.tp_size=2"],
        ["backend.pp_size=2"],
        ["+backend.extra_build_args.opt_num_tokens=64"],
        ["+backend.extra_runtime_args.fast_build=true"],
    ]
    keys = {_key(model, *o) for o in shaping}
    assert base not in keys and len(keys) == len(shaping)
    assert _key(model, version="1.2.2") != base
    runtime = [
        ["backend.kv_cache_free_gpu_memory_fraction=0.5"],
        ["backend.scheduler_policy=max_utilization"],
        ["backend.batching_type=static"],
        ["backend.enable_chunked_context=true"],
        ["backend.enable_kv_cache_reuse=true"],
        ["backend.force_rebuild=true"],
        ["backend.engine_cache_dir=/elsewhere"],
        ["decoder.preset=standard", "num_input_prompts=3"],
    ]
    assert {_key(model, *o) for o in runtime} == {base}
    (model / "config.json").write_text('{"architectures": ["MistralForCausalLM"]}')
    assert _key(model) != base
    (model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (model / "model.safetensors").write_bytes(b"0" * 101)
    assert _key(model) != base


def _writer(calls: list[Path]) -> Callable[[Path], None]:
    def build(staging: Path) -> None:
        calls.append(staging)
        (staging / "rank0.engine").write_bytes(b"engine")

    return build


def test_engine_cache_builds_once_reuses_and_rebuilds_when_forced(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path / "engines"), []
    built = cache.get_or_build("k1", {"x": 1}, _writer(calls))
    assert built.built and built.build_s is not None and built.path == cache.entry("k1")
    assert json.loads((built.path / MARKER).read_text())["inputs"] == {"x": 1}
    reused = cache.get_or_build("k1", {"x": 1}, _writer(calls))
    assert not reused.built and reused.build_s is None and len(calls) == 1
    forced = cache.get_or_build("k1", {"x": 1}, _writer(calls), force=True)
    assert forced.built and len(calls) == 2 and (forced.path / "rank0.engine").is_file()
    assert sorted(p.name for p in cache.root.iterdir()) == [".k1.lock", "k1"], "no staging folder left behind"


def test_engine_cache_never_reuses_an_incomplete_entry(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path / "engines"), []
    crashed = cache.entry("k1")
    crashed.mkdir(parents=True)
    (crashed / "rank0.engine").write_bytes(b"half")  # a build that died before writing the marker
    (cache.root / ".k1.staging-dead").mkdir()  # and the staging folder of another one
    assert not cache.is_complete("k1")
    rebuilt = cache.get_or_build("k1", {}, _writer(calls))
    assert rebuilt.built and len(calls) == 1 and (rebuilt.path / "rank0.engine").read_bytes() == b"engine"
    assert not (cache.root / ".k1.staging-dead").exists()


def test_engine_cache_keeps_nothing_from_a_failed_build(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")

    def failing(staging: Path) -> None:
        (staging / "rank0.engine").write_bytes(b"half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        cache.get_or_build("k1", {}, failing)
    assert not cache.entry("k1").exists() and not list(cache.root.glob(".k1.staging-*"))


# --- 4. Not installed, or installed but broken -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorrt_llm") is not None, reason="tensorrt_llm is installed here")
def test_not_installed_is_one_line_and_a_failed_load(tmp_path: Path, lem_cache: Path) -> None:
    run = run_lem(
        "backend=tensorrt", "fp_precision=float16", *QUICK, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)}
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("lem: error:")]
    assert len(errors) == 1, run.stderr[-2000:]
    assert "tensorrt_llm package is not installed" in errors[0] and "NVIDIA GPU" in errors[0]
    assert "pip install -e .[tensorrt]" in errors[0] and "docs/backends.md" in errors[0]
    (path,) = tmp_path.glob("outputs/*/*/results.json")
    result = read_result(path)
    assert result.status == "failed" and result.error is not None and result.error.phase == "load"


def _moved(name: str, module: str) -> Callable[[dict[str, Any]], None]:
    return lambda contract: contract["imports"]["names"].update({name: module})


def _broken_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tensorrt_llm on sys.path whose import fails as one without its CUDA libraries does."""
    package = tmp_path / "site" / "tensorrt_llm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise OSError("libcuda.so.1: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m == "tensorrt_llm" or m.startswith("tensorrt_llm.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", r"the tensorrt_llm package is not installed here; TensorRT-LLM runs on a Linux host"),
        ("broken", r"tensorrt_llm is installed but failed to import \(OSError: libcuda\.so\.1: cannot open"),
        (
            _moved("KVCacheType", "tensorrt_llm.llmapi"),
            r"tensorrt_llm is installed but cannot import tensorrt_llm\.llmapi\.kv_cache_type;",
        ),
        (
            _moved("BuildConfig", "tensorrt_llm.plugin"),
            r"tensorrt_llm 1\.2\.1 has no tensorrt_llm\.llmapi\.BuildConfig: it differs from the 1\.2\.1 API .*"
            r"check_trtllm_contract\.py",
        ),
    ],
)
def test_an_unusable_tensorrt_llm_is_one_line_error_at_load(
    case: Any, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every way the import can fail (absent, failing on import, names moved) is lem's one-line error with the hint."""
    from lem.backends.tensorrt.backend import TensorRTBackend

    if case == "missing":
        monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # `import tensorrt_llm` raises ModuleNotFoundError
    elif case == "broken":
        _broken_package(tmp_path, monkeypatch)
    else:
        contract = copy.deepcopy(CONTRACT)
        case(contract)
        install_double(monkeypatch, contract, tmp_path / "workspace")
    with pytest.raises(LemError, match=message) as raised:
        TensorRTBackend(trt_config(), str(tmp_path), []).load()
    assert raised.value.phase == "load" and "\n" not in str(raised.value)


# --- 5. The contract check script (scripts/check_trtllm_contract.py) ---------------------------------------------


def test_contract_check_finds_nothing_where_the_installed_api_is_the_contract(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install_double(monkeypatch, CONTRACT, tmp_path)
    assert CHECK.differences(CONTRACT) == []
    assert CHECK.main([]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "installed tensorrt_llm 1.2.1; contract tensorrt_llm_api.json records 1.2.1",
        "no differences",
    ]


def _drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def alter(contract: dict[str, Any]) -> None:
        holder = contract
        for key in path[:-1]:
            holder = holder[key]
        if isinstance(holder, list):
            holder.remove(path[-1])
        else:
            del holder[path[-1]]

    return alter


def _set(value: Any, *path: str) -> Callable[[dict[str, Any]], None]:
    def alter(contract: dict[str, Any]) -> None:
        holder = contract
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value

    return alter


#: An alteration of the API installed (the double is built from an altered contract) → the difference the check must
#: report when it compares lem's contract with it.
ALTERATIONS: list[tuple[Callable[[dict[str, Any]], None], list[str]]] = [
    (
        _drop("objects", "BuildConfig", "fields", "max_input_len"),
        ["BuildConfig.max_input_len: recorded in the contract, not accepted by the installed BuildConfig"],
    ),
    (
        _set({"type": "bool", "default": False}, "objects", "KvCacheConfig", "fields", "new_knob"),
        ["KvCacheConfig.new_knob: accepted by the installed KvCacheConfig, not recorded in the contract"],
    ),
    (
        _set({"type": "int", "default": 3}, "objects", "BuildConfig", "fields", "opt_level"),
        [
            "BuildConfig.opt_level: accepted by the installed BuildConfig, not recorded in the contract",
            "BuildConfig.opt_level: recorded as absent, present in the installed BuildConfig",
        ],
    ),
    (
        _set(256, "objects", "BuildConfig", "fields", "max_batch_size", "default"),
        ["BuildConfig.max_batch_size: default 256 installed, 2048 recorded"],
    ),
    (
        _drop("objects", "LLM", "kwargs", "enable_chunked_prefill"),
        ["LLM.enable_chunked_prefill: recorded in the contract, not accepted by the installed LLM"],
    ),
    (
        _drop("enums", "QuantAlgo", "W4A16_AWQ"),
        ["QuantAlgo.W4A16_AWQ: recorded in the contract, not a member of the installed enum"],
    ),
    (
        _drop("outputs", "CompletionOutput", "token_ids"),
        ["CompletionOutput.token_ids: recorded in the contract, not found on the installed CompletionOutput"],
    ),
    (
        _set("generate(inputs, sampling_params=None) -> RequestOutput", "objects", "LLM", "methods", "generate"),
        [
            "LLM.generate: parameters ['inputs', 'sampling_params'] installed, "
            f"{CHECK.recorded_parameters(CONTRACT['objects']['LLM']['methods']['generate'])} recorded"
        ],
    ),
    (
        _moved("PluginConfig", "tensorrt_llm.llmapi"),
        ["import PluginConfig: tensorrt_llm.plugin.PluginConfig cannot be imported (ModuleNotFoundError: "],
    ),
    (
        _set("tensorrt_llm.llmapi.args", "llm_constructor", "args_class", "module"),
        ["LLM keywords: tensorrt_llm.llmapi.llm_args.TrtLlmArgs cannot be imported (ModuleNotFoundError: "],
    ),
]


@pytest.mark.parametrize(("alter", "expected"), ALTERATIONS)
def test_contract_check_reports_each_difference(
    alter: Callable[[dict[str, Any]], None], expected: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Were the transcription wrong in any of these ways, the check run where TensorRT-LLM is installed says so."""
    installed = copy.deepcopy(CONTRACT)
    alter(installed)
    install_double(monkeypatch, installed, tmp_path)
    found = CHECK.differences(CONTRACT)
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found
    assert CHECK.main([]) == 1


def test_contract_check_without_tensorrt_llm_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)
    assert CHECK.main([]) == 2
    assert "tensorrt_llm cannot be imported here" in capsys.readouterr().err


# --- 6. Escape hatches, fp_precision=auto and special tokens, against the double ---------------------------------


def test_escape_hatch_keys_are_checked_against_the_installed_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_double(monkeypatch, CONTRACT, tmp_path)
    config = trt_config(
        "+backend.extra_build_args.opt_num_token=64",
        "+backend.extra_build_args.max_input_ln=64",
        "+backend.extra_runtime_args.enable_tqdm=true",
        "+backend.extra_runtime_args.tensor_parallel_size=2",
    )
    findings = {f.param: f for f in validate(config, probe_machine())}
    typo = findings["backend.extra_build_args.opt_num_token"]
    assert typo.code == "UNKNOWN_ENGINE_ARG" and typo.severity == "error"
    assert typo.message == (
        "'opt_num_token' is not an argument of the installed TensorRT-LLM 1.2.1's BuildConfig; "
        "did you mean backend.extra_build_args.opt_num_tokens?"
    )
    assert findings["backend.extra_build_args.max_input_ln"].message.endswith("did you mean backend.max_input_len?")
    duplicate = findings["backend.extra_runtime_args.tensor_parallel_size"]
    assert duplicate.code == "EXTRA_DUPLICATES_FIELD" and "backend.tp_size" in duplicate.message
    checked = findings["backend.extra_runtime_args"]
    assert checked.severity == "info" and checked.message == (
        "enable_tqdm: checked against the installed TensorRT-LLM 1.2.1's LLM()"
    )


@pytest.mark.slow
def test_flow_fits_the_longest_prompt_with_its_bos_and_records_auto_precision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lem_cache: Path
) -> None:
    """Synthetic prompts are exactly max_input_tokens long; the tokenizer adds BOS, and the engine built with lem's
    default max_input_len accepts them. fp_precision=auto is float16 or bfloat16 (never float32) and recorded."""
    state = install_double(monkeypatch, CONTRACT, tmp_path / "workspace")
    config = compose_config(
        "backend=tensorrt",
        f"cache_dir={lem_cache}",
        f"backend.engine_cache_dir={tmp_path / 'engines'}",
        *QUICK,
        "dataset.name=synthetic",
        "max_input_tokens=16",
    )
    assert config.fp_precision == "auto"
    result = _run(config, tmp_path / "job")
    assert result.status == "ok" and result.metrics is not None and result.backend is not None
    assert result.metrics.input_tokens == 6 * (16 + 1), "every prompt: 16 tokens and BOS"
    (build_config,) = state.kwargs_of("BuildConfig")
    assert build_config["max_input_len"] == 16 + 1 and build_config["max_seq_len"] == 16 + 1 + 8
    precision = result.backend["settings"]["fp_precision"]
    assert precision in ("float16", "bfloat16") and state.kwargs_of("LLM")[0]["dtype"] == precision
