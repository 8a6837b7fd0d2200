"""scenario=serving with backend=tensorrt: trtllm-serve, proven by contract (TensorRT-LLM cannot be installed here).

tests/contracts/trtllm_serve_cli.json records TensorRT-LLM 1.2.1's serve command (its click options), the completions
request fields lem sends and the stream options; tests/contracts/tensorrt_llm_api.json the LLM-API arguments the
options file carries. A stand-in `tensorrt_llm` package is generated from those two records only: its serve command
accepts exactly the recorded options, its request models exactly the recorded fields (unknown ones refused, as
TensorRT-LLM refuses them), and its server refuses an options file whose keys or enum values the API record lacks.
lem's own code runs unmodified against it: the pure command line and options file, the server child (port choice,
the click parse-back), the TCP transport, the whole harness, the console summary and the contract check script.
Each check is shown to catch a deliberate mistake.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from conftest import REPO, compose_config, load_module, one_error_line, result_files, run_lem, wait_until

from lem.config.machine import probe_machine
from lem.config.rules import errors, validate
from lem.errors import LemError
from lem.results.reader import read_job
from lem.serving.child import check_click_parsed
from lem.serving.launch import LLM_API_OPTIONS_FILE, SERVER_SPEC_FILE, trtllm_launch
from lem.serving.load import completion_body
from lem.serving.server import ServerProcess
from lem.serving.trtllm import (
    PARAMETER_OF,
    SERVE_FLAGS,
    SWITCHES,
    completion_sampling,
    llm_api_options,
    serve_argv,
    serve_parameters,
)

SERVE_CONTRACT: dict[str, Any] = json.loads((REPO / "tests" / "contracts" / "trtllm_serve_cli.json").read_text())
API_CONTRACT: dict[str, Any] = json.loads((REPO / "tests" / "contracts" / "tensorrt_llm_api.json").read_text())
MODEL = "/models/some-llama"
BOS = 1
OPTIONS = Path("/job/trtllm_llm_api_options.yaml")
TAG_ENV = "LEM_TEST_TAG"
#: A short serving run of the built-in model against the stand-in server.
QUICK = [
    "backend=tensorrt",
    "scenario=serving",
    "fp_precision=float16",
    "max_output_tokens=8",
    "scenario.num_requests=16",
    "scenario.ramp_up_requests=3",
    "scenario.request_rate=20",
    "warmup.mode=fixed",
    "warmup.count=2",
    "baseline.duration_s=0.5",
]


def trt_serving(*overrides: str) -> Any:
    """A config composed through real Hydra: backend=tensorrt, scenario=serving, float16."""
    return compose_config("backend=tensorrt", "scenario=serving", "fp_precision=float16", *overrides)


# --- the stand-in tensorrt_llm, generated from the contracts -------------------------------------------------------

_DOUBLE = r'''
"""A stand-in for TensorRT-LLM's trtllm-serve, built only from lem's contracts (contracts.json beside this file):
written by tests/test_serving_tensorrt.py."""
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import click
import yaml
from pydantic import ConfigDict, ValidationError, create_model

CONTRACTS = json.loads((Path(__file__).parent / "contracts.json").read_text())
SERVE, API = CONTRACTS["serve"], CONTRACTS["api"]
TOKEN_S = 0.002
#: Options-file key -> the API object its mapping builds (plugin_config sits inside build_config).
NESTED = {
    "build_config": "BuildConfig",
    "plugin_config": "PluginConfig",
    "kv_cache_config": "KvCacheConfig",
    "scheduler_config": "SchedulerConfig",
    "quant_config": "QuantConfig",
    "calib_config": "CalibConfig",
}


def request_model(name, spec, types=None):
    fields = {}
    for field, info in (spec.get("fields_lem_sends") or spec["fields"]).items():
        kind = (types or {}).get(field, Any)
        fields[field] = (kind, ...) if field in spec.get("required", ()) else (kind, info.get("default"))
    return create_model(name, __config__=ConfigDict(extra=spec.get("extra", "forbid")), **fields)


StreamOptions = request_model("StreamOptions", SERVE["stream_options"])
CompletionRequest = request_model(
    "CompletionRequest", SERVE["completion_request"], {"stream_options": Optional[StreamOptions]}
)


def check_value(owner, key, value, declared):
    if key not in declared:
        raise click.UsageError(f"{owner} got invalid argument: {key}")
    for enum in re.findall(r"enum:(\w+)", declared[key]["type"]):
        members = {m.upper() for m in API["enums"][enum]}
        if value is not None and str(value).upper() not in members:
            raise click.UsageError(f"{owner}.{key}: {value!r} is no {enum} member")
    if key in NESTED and value is not None:
        fields = API["objects"][NESTED[key]]["fields"]
        for nested_key, nested_value in value.items():
            check_value(NESTED[key], nested_key, nested_value, fields)


def serve_callback(model, host, port, extra_llm_api_options, **_):
    if extra_llm_api_options:
        options = yaml.safe_load(Path(extra_llm_api_options).read_text()) or {}
        for key, value in options.items():
            check_value("LLM", key, value, API["objects"]["LLM"]["kwargs"])
    model_id = Path(model).name if Path(model).is_dir() else model

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                self.send_json(200, {})
            elif self.path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": model_id, "owned_by": "tensorrt_llm"}]})
            else:
                self.send_json(404, {"error": self.path})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                request = CompletionRequest.model_validate(body)
            except ValidationError as ex:
                return self.send_json(400, {"error": " ".join(str(ex).split())})
            options = request.stream_options
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            prompt_tokens = len(str(request.prompt).split())
            for n in range(1, request.max_tokens + 1):
                time.sleep(TOKEN_S)
                chunk = {"model": model_id, "choices": [{"index": 0, "text": "x"}]}
                if options is not None and options.include_usage and options.continuous_usage_stats:
                    chunk["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": n}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            if options is not None and options.include_usage:
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}
                self.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as ex:
        raise RuntimeError(f"Failed to bind socket to {host}:{port}: {ex}")
    server.daemon_threads = True
    print(f"stand-in trtllm-serve on {host}:{port}", flush=True)
    server.serve_forever()


def option(name, spec):
    kwargs = {"default": spec["default"]}
    if spec["type"] == "flag":
        kwargs["is_flag"] = True
    elif spec["type"] == "choice":
        kwargs["type"] = click.Choice(spec["choices"])
    else:
        kwargs["type"] = {"int": int, "float": float, "str": str, "path": str}[spec["type"]]
    if spec.get("multiple"):
        kwargs["multiple"] = True
    return click.Option([*spec["opts"], name], **kwargs)


serve = click.Command(
    SERVE["entry"]["command"],
    callback=serve_callback,
    params=[click.Argument([a]) for a in SERVE["entry"]["arguments"]]
    + [option(name, spec) for name, spec in SERVE["options"].items()],
)
main = click.Group("trtllm-serve", commands={serve.name: serve})
'''

_FILES = {
    "__init__.py": '__version__ = "1.2.1"\n',
    "commands/__init__.py": "",
    "commands/serve.py": "from tensorrt_llm._double import main, serve  # noqa: F401\n",
    "serve/__init__.py": "",
    "serve/openai_protocol.py": "from tensorrt_llm._double import CompletionRequest, StreamOptions  # noqa: F401\n",
    "_double.py": _DOUBLE,
}


def write_double(site: Path, serve_contract: dict[str, Any]) -> Path:
    """A stand-in tensorrt_llm package under `site`, built from `serve_contract` and lem's API contract."""
    package = site / "tensorrt_llm"
    for name, text in _FILES.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    (package / "contracts.json").write_text(json.dumps({"serve": serve_contract, "api": API_CONTRACT}))
    return site


@pytest.fixture
def install_double(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Put a stand-in tensorrt_llm built from a (possibly altered) serve contract on sys.path; gone after the test."""
    before = {name for name in sys.modules if name.split(".")[0] == "tensorrt_llm"}
    for name in before:
        monkeypatch.delitem(sys.modules, name)

    def install(serve_contract: dict[str, Any]) -> None:
        monkeypatch.syspath_prepend(str(write_double(tmp_path / "site", serve_contract)))
        importlib.invalidate_caches()

    yield install
    for name in [name for name in sys.modules if name.split(".")[0] == "tensorrt_llm"]:
        del sys.modules[name]


def _serve_command(serve_contract: dict[str, Any], tmp_path: Path) -> Any:
    """The stand-in's click serve command for `serve_contract`, imported from a fresh copy (no sys.path change)."""
    site = write_double(tmp_path / f"site{len(list(tmp_path.glob('site*')))}", serve_contract)
    return load_module(site / "tensorrt_llm" / "_double.py", "serve_double").serve


CHECK = load_module(REPO / "scripts" / "check_trtllm_contract.py", "check_trtllm_contract")


# --- 1. The command line -------------------------------------------------------------------------------------------


def test_every_flag_lem_writes_belongs_to_its_parameter_in_the_contract() -> None:
    options = SERVE_CONTRACT["options"]
    for name, flag in SERVE_FLAGS.items():
        assert name in options and flag in options[name]["opts"], f"{flag} ({name}) is not in the contract"
    assert all(options[name]["type"] == "flag" for name in SWITCHES)
    assert all(options[name]["type"] != "flag" for name in set(SERVE_FLAGS) - set(SWITCHES))
    assert set(PARAMETER_OF.values()) <= set(SERVE_FLAGS)


def _pairs(argv: list[str]) -> dict[str, str | None]:
    """Flag → its value (None for a switch) in a serve command line."""
    pairs: dict[str, str | None] = {}
    for i, token in enumerate(argv):
        if token.startswith("--"):
            following = argv[i + 1] if i + 1 < len(argv) else "--"
            pairs[token] = None if following.startswith("--") else following
    return pairs


#: Overrides → flags that must carry exactly these values (None: a switch); the rest default.
COMMAND_CASES: list[tuple[list[str], dict[str, str | None]]] = [
    (
        [],
        {
            "--backend": "tensorrt",
            "--host": "127.0.0.1",
            "--port": "8123",
            "--tokenizer": MODEL,
            "--max_batch_size": "8",
            "--max_seq_len": str(128 + BOS + 64),
            "--max_beam_width": "1",
            "--tp_size": "1",
            "--pp_size": "1",
            "--extra_llm_api_options": str(OPTIONS),
        },
    ),
    (
        [
            "backend.max_batch_size=4",
            "backend.max_num_tokens=2048",
            "backend.max_seq_len=300",
            "backend.tp_size=2",
            "backend.pp_size=2",
            "backend.max_beam_width=2",
            "backend.kv_cache_free_gpu_memory_fraction=0.5",
            "backend.enable_chunked_context=true",
        ],
        {
            "--max_batch_size": "4",
            "--max_num_tokens": "2048",
            "--max_seq_len": "300",
            "--tp_size": "2",
            "--pp_size": "2",
            "--max_beam_width": "2",
            "--kv_cache_free_gpu_memory_fraction": "0.5",
            "--enable_chunked_prefill": None,
        },
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), COMMAND_CASES)
def test_command_line_carries_the_config_and_parses_back(
    overrides: list[str], expected: dict[str, str | None], tmp_path: Path
) -> None:
    parameters = serve_parameters(trt_serving(*overrides), MODEL, BOS, OPTIONS, 8123)
    argv = serve_argv(parameters)
    assert argv[:2] == ["serve", MODEL]
    pairs = _pairs(argv)
    assert {flag: pairs.get(flag, "absent") for flag in expected} == expected
    if "backend.enable_chunked_context=true" not in overrides:
        assert "--enable_chunked_prefill" not in pairs and "--kv_cache_free_gpu_memory_fraction" not in pairs
        assert "--max_num_tokens" not in pairs, "null: TensorRT-LLM's default"
    # The serve command built from the contract parses it back, every value arriving as lem meant it.
    check_click_parsed(_serve_command(SERVE_CONTRACT, tmp_path), argv[1:], parameters)


def _without_flag(flag: str) -> dict[str, Any]:
    contract = copy.deepcopy(SERVE_CONTRACT)
    for spec in contract["options"].values():
        if flag in spec["opts"]:
            spec["opts"].remove(flag)
    return contract


def _renamed(name: str, new_name: str) -> dict[str, Any]:
    contract = copy.deepcopy(SERVE_CONTRACT)
    contract["options"][new_name] = contract["options"].pop(name)
    return contract


@pytest.mark.parametrize(
    ("contract", "problem"),
    [
        (_without_flag("--kv_cache_free_gpu_memory_fraction"), "No such option.*--kv_cache_free_gpu_memory_fraction"),
        (_without_flag("--tp_size"), "No such option.*--tp_size"),
        (
            _renamed("free_gpu_memory_fraction", "kv_fraction"),
            "free_gpu_memory_fraction=0.5 reached the server as None",
        ),
    ],
)
def test_a_flag_missing_from_the_contract_fails(contract: dict[str, Any], problem: str, tmp_path: Path) -> None:
    """Had the contract not had one of lem's flags (or had it under another parameter), the parse-back fails: the
    same check the server child runs against the installed command before the server starts."""
    config = trt_serving("backend.kv_cache_free_gpu_memory_fraction=0.5")
    parameters = serve_parameters(config, MODEL, BOS, OPTIONS, 8123)
    with pytest.raises(ValueError, match=problem):
        check_click_parsed(_serve_command(contract, tmp_path), serve_argv(parameters)[1:], parameters)


# --- 2. The options file ---------------------------------------------------------------------------------------------

#: Override → (path in the options file, value there).
OPTION_CASES: list[tuple[str, tuple[str, ...], Any]] = [
    ("fp_precision=bfloat16", ("dtype",), "bfloat16"),
    ("backend.quantization=fp8", ("quant_config", "quant_algo"), "FP8"),
    ("backend.kv_cache_quantization=int8", ("quant_config", "kv_cache_quant_algo"), "INT8"),
    ("backend.kv_cache_max_tokens=4096", ("kv_cache_config", "max_tokens"), 4096),
    ("backend.kv_cache_free_gpu_memory_fraction=0.5", ("kv_cache_config", "free_gpu_memory_fraction"), 0.5),
    ("backend.enable_kv_cache_reuse=true", ("kv_cache_config", "enable_block_reuse"), True),
    ("backend.scheduler_policy=max_utilization", ("scheduler_config", "capacity_scheduler_policy"), "MAX_UTILIZATION"),
    ("backend.batching_type=static", ("batching_type",), "STATIC"),
    ("backend.kv_cache_type=continuous", ("build_config", "kv_cache_type"), "CONTINUOUS"),
    ("backend.max_input_len=100", ("build_config", "max_input_len"), 100),
    ("backend.max_batch_size=4", ("build_config", "max_batch_size"), 4),
    ("backend.gemm_plugin=null", ("build_config", "plugin_config", "gemm_plugin"), None),
    ("backend.multiple_profiles=true", ("build_config", "plugin_config", "multiple_profiles"), True),
    ("backend.calib_batches=16", ("calib_config", "calib_batches"), 16),
    ("+backend.extra_build_args.opt_num_tokens=256", ("build_config", "opt_num_tokens"), 256),
    ("+backend.extra_runtime_args.enable_tqdm=true", ("enable_tqdm",), True),
]


def _at(mapping: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        mapping = mapping[key]
    return mapping


@pytest.mark.parametrize(("override", "path", "value"), OPTION_CASES)
def test_options_file_carries_the_rest_of_the_config(override: str, path: tuple[str, ...], value: Any) -> None:
    options = llm_api_options(trt_serving(override), MODEL, BOS)
    assert _at(options, path) == value
    assert yaml.safe_load(yaml.safe_dump(options)) == options, "plain YAML values only (enums by member name)"


def _keys_outside_the_api(options: dict[str, Any]) -> list[str]:
    """Keys of an options file that the API contract does not record where the file puts them."""
    objects = API_CONTRACT["objects"]
    nested = {"build_config": "BuildConfig", "kv_cache_config": "KvCacheConfig", "scheduler_config": "SchedulerConfig"}
    nested |= {"quant_config": "QuantConfig", "calib_config": "CalibConfig", "plugin_config": "PluginConfig"}
    outside = []

    def walk(owner: str, mapping: dict[str, Any], declared: dict[str, Any]) -> None:
        for key, value in mapping.items():
            if key not in declared:
                outside.append(f"{owner}.{key}")
            elif key in nested:
                walk(nested[key], value, objects[nested[key]]["fields"])

    walk("LLM", options, objects["LLM"]["kwargs"])
    return outside


def test_options_file_keys_are_in_the_api_contract_and_flags_are_not_repeated_there() -> None:
    every_field = [case[0] for case in OPTION_CASES if not case[0].startswith("+")]
    options = llm_api_options(trt_serving(*every_field, "backend.calib_dataset=/data/calib.jsonl"), MODEL, BOS)
    assert _keys_outside_the_api(options) == []
    assert _keys_outside_the_api({**options, "build_config": {"opt_level": 3}}) == ["BuildConfig.opt_level"]
    flagged = {keyword for (obj, keyword) in PARAMETER_OF if obj == "LLM"}
    assert not flagged & set(options), "LLM keywords with a flag are passed once, as the flag"
    assert "model" not in options and "return_perf_metrics" not in options
    default = llm_api_options(trt_serving(), MODEL, BOS)
    assert default["kv_cache_config"] == {"enable_block_reuse": False}, "TensorRT-LLM's own default is true"
    assert (
        default["build_config"]["max_batch_size"]
        == 8
        == serve_parameters(trt_serving(), MODEL, BOS, OPTIONS, 1)["max_batch_size"]
    ), "what a flag carries and its nested object's copy agree"
    assert "quant_config" not in default and "calib_config" not in default, "empty objects are left out"


# --- 3. The completions request ------------------------------------------------------------------------------------


def test_completion_body_has_only_fields_the_request_contract_records(tmp_path: Path) -> None:
    sampling = {**completion_sampling(trt_serving("max_output_tokens=16")), "model": "some-llama"}
    body = completion_body(sampling, "Hi")
    request = SERVE_CONTRACT["completion_request"]
    assert set(body) <= set(request["fields_lem_sends"]) and set(request["required"]) <= set(body)
    assert set(body["stream_options"]) <= set(SERVE_CONTRACT["stream_options"]["fields"])
    assert body["max_tokens"] == body["min_tokens"] == 16 and body["ignore_eos"] is True and body["top_k"] == 1
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    sampled = completion_body({**completion_sampling(trt_serving("decoder.preset=standard")), "model": "m"}, "Hi")
    assert set(sampled) <= set(request["fields_lem_sends"]) and sampled["temperature"] == 1.0
    double = load_module(
        write_double(tmp_path / "site", SERVE_CONTRACT) / "tensorrt_llm" / "_double.py", "double_models"
    )
    double.CompletionRequest.model_validate(body)
    with pytest.raises(ValueError, match="cache_salt"):  # why warm-up requests carry no salt to trtllm-serve
        double.CompletionRequest.model_validate({**body, "cache_salt": "lem-warmup"})


# --- 4. Validation and the launch ------------------------------------------------------------------------------------


def test_serving_with_tensorrt_validates_and_says_it_is_contract_tested_only() -> None:
    findings = validate(trt_serving(), probe_machine())
    assert errors(findings) == []
    codes = {f.code: f for f in findings}
    assert "TRTLLM_SERVE_UNTESTED" in codes and codes["TRTLLM_SERVE_UNTESTED"].severity == "warning"
    assert "never on hardware" in codes["TRTLLM_SERVE_UNTESTED"].message
    assert codes["TRTLLM_SERVE_BUILDS_ENGINE"].severity == "info"
    assert "SERVING_PROMPTS_REPEAT" not in codes, "KV-cache reuse is off by default"
    repeat = validate(trt_serving("scenario.num_requests=200", "backend.enable_kv_cache_reuse=true"), probe_machine())
    (finding,) = [f for f in repeat if f.code == "SERVING_PROMPTS_REPEAT"]
    assert "backend.enable_kv_cache_reuse=false" in finding.message


def test_serving_with_tensorrt_dry_run(tmp_path: Path) -> None:
    run = run_lem(*QUICK, "dry_run=true", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "valid: 0 error(s)" in run.stdout + run.stderr


@pytest.mark.skipif(importlib.util.find_spec("tensorrt_llm") is not None, reason="tensorrt_llm is installed here")
def test_launch_without_tensorrt_llm_is_one_line_at_load(tmp_path: Path) -> None:
    server = ServerProcess("server", tmp_path / "server.log")
    try:
        with pytest.raises(LemError) as raised:
            trtllm_launch(trt_serving(), MODEL, [], tmp_path, server)
    finally:
        server.stop()
    message = str(raised.value)
    assert raised.value.phase == "load" and "\n" not in message
    assert "the tensorrt_llm package (which provides trtllm-serve) is not installed here" in message
    assert "NVIDIA GPU" in message and "pip install -e .[tensorrt]" in message


def test_launch_writes_the_options_file_and_the_childs_spec(
    install_double: Callable[[dict[str, Any]], None], lem_cache: Path, tmp_path: Path
) -> None:
    from lem.model.resolve import resolve_model

    install_double(SERVE_CONTRACT)
    config = trt_serving(f"cache_dir={lem_cache}", "backend.max_batch_size=4")
    model_path = resolve_model(config.model, lem_cache)
    server = ServerProcess("server", tmp_path / "server.log")
    try:
        launch = trtllm_launch(config, model_path, [], tmp_path, server)
    finally:
        server.stop()
    assert launch.transport == "tcp" and launch.warmup_body == {} and launch.name == "trtllm-serve"
    assert launch.command[1:] == ["-m", "lem.serving.child", str(tmp_path / SERVER_SPEC_FILE)]
    spec = json.loads((tmp_path / SERVER_SPEC_FILE).read_text())
    assert spec["server"] == "trtllm-serve" and spec["port_path"] == server.port_path
    assert spec["parameters"]["max_batch_size"] == 4 and spec["parameters"]["port"] == 0, "the child picks the port"
    written = yaml.safe_load((tmp_path / LLM_API_OPTIONS_FILE).read_text())
    assert written == spec["llm_api_options"] and written["dtype"] == "float16"
    assert "return_perf_metrics" not in launch.sampling and launch.sampling["max_tokens"] == config.max_output_tokens


# --- 5. A run end to end against the stand-in server ---------------------------------------------------------------


def _tagged(tag: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TAG_ENV) == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.mark.slow
def test_serving_run_against_the_stand_in_trtllm_serve(tmp_path: Path, lem_cache: Path) -> None:
    """The whole harness with the server on a loopback port: the child picks it, the server's flags parse back, its
    options file passes the API contract, requests fit the request contract; the console shows the serving figures;
    nothing is left running."""
    site = write_double(tmp_path / "site", SERVE_CONTRACT)
    tag = os.urandom(8).hex()
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {"LEM_CACHE_DIR": str(lem_cache), "PYTHONPATH": pythonpath, TAG_ENV: tag}
    run = run_lem(*QUICK, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    wait_until(lambda: not _tagged(tag), 10, "the stand-in server to end")
    (path,) = result_files(tmp_path)
    job = read_job(path.parent)
    assert job.status == "ok" and job.result is not None and job.result.serving is not None
    result = job.result
    server = result.backend["settings"]["server"]
    argv = server["argv"]
    pairs = _pairs(argv)
    assert argv[0] == "serve" and pairs["--backend"] == "tensorrt" and pairs["--host"] == "127.0.0.1"
    assert int(pairs["--port"] or 0) > 0 and server["served_models"][0]["id"] == Path(argv[1]).name
    assert result.backend["settings"]["engine_args"] == yaml.safe_load(
        Path(pairs["--extra_llm_api_options"] or "").read_text()
    )
    serving = result.serving
    assert serving.server == "trtllm-serve" and serving.requests_completed_in_window > 0
    assert result.metrics is not None and result.metrics.output_tokens == 8 * result.metrics.num_requests
    assert serving.estimated_j_per_request is not None and serving.j_per_request is None, "CPU host: estimate only"
    log = (path.parent / "server.log").read_text()
    assert "stand-in trtllm-serve on 127.0.0.1:" in log and "lem: starting trtllm-serve with: serve " in log
    for row in ("request rate", "target 20 req/s", "serving window", "goodput", "TTFT p50 / p99", "TPOT p50 / p99"):
        assert row in run.stdout, row
    assert "J / request (ESTIMATE)" in run.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorrt_llm") is not None, reason="tensorrt_llm is installed here")
def test_serving_run_without_tensorrt_llm_fails_at_load_in_one_line(tmp_path: Path, lem_cache: Path) -> None:
    run = run_lem(*QUICK, cwd=tmp_path, env={"LEM_CACHE_DIR": str(lem_cache)})
    line = one_error_line(run.stderr)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "tensorrt_llm package (which provides trtllm-serve) is not installed here" in line, line
    (path,) = result_files(tmp_path)
    job = read_job(path.parent)
    assert job.status == "failed" and job.result is not None and job.result.error is not None
    assert job.result.error.phase == "load"


# --- 6. The loopback port: a stranger on it is refused --------------------------------------------------------------


def test_a_stranger_answering_on_the_chosen_port_is_refused(tmp_path: Path) -> None:
    """The residual race of a TCP port: another program binds it between the child's choice and the server's bind.
    Here a thread of the test (not the server's process) answers /health on the port the child announces."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    stranger = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    server = ServerProcess("stand-in server", tmp_path / "server.log")
    child = (
        "import sys, time; from pathlib import Path; from lem.serving.child import arm; arm(); "
        f"Path(sys.argv[1]).write_text('{stranger.server_address[1]}'); time.sleep(600)"
    )
    try:
        server.start([sys.executable, "-c", child, server.port_path], {}, transport="tcp")
        with pytest.raises(LemError, match=r"answered /health, but no process of the stand-in server listens there"):
            server.wait_healthy(30.0, "scenario.server_start_timeout_s")
    finally:
        server.stop(grace_s=2.0)
        stranger.shutdown()
    assert not server.alive()


# --- 7. The contract check script (scripts/check_trtllm_contract.py --serve) ----------------------------------------


def test_serve_contract_check_finds_nothing_where_the_installed_command_is_the_contract(
    install_double: Callable[[dict[str, Any]], None], capsys: pytest.CaptureFixture[str]
) -> None:
    install_double(SERVE_CONTRACT)
    assert CHECK.serve_differences(SERVE_CONTRACT) == []
    assert CHECK.main(["--serve"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "installed tensorrt_llm 1.2.1; contract trtllm_serve_cli.json records 1.2.1",
        "no differences",
    ]


def _alter(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    contract = copy.deepcopy(SERVE_CONTRACT)
    change(contract)
    return contract


#: An installed serve command that differs from the contract in one way → the difference the check must report.
SERVE_ALTERATIONS: list[tuple[dict[str, Any], list[str]]] = [
    (
        _alter(lambda c: c["options"]["tensor_parallel_size"]["opts"].remove("--tp_size")),
        ["serve tensor_parallel_size: flags ['--tensor_parallel_size'] installed, "],
    ),
    (
        _alter(lambda c: c["options"].pop("enable_chunked_prefill")),
        ["serve enable_chunked_prefill: recorded in the contract, not an option of the installed serve command"],
    ),
    (
        _alter(lambda c: c["options"].update(uds={"opts": ["--uds"], "type": "str", "default": None})),
        ["serve uds: an option of the installed serve command, not recorded in the contract"],
    ),
    (
        _alter(lambda c: c["options"]["backend"]["choices"].remove("tensorrt")),
        ["serve backend: choices ['_autodeploy', 'pytorch'] installed, ['_autodeploy', 'pytorch', 'tensorrt']"],
    ),
    (
        _alter(lambda c: c["options"]["enable_chunked_prefill"].update(type="str")),
        ["serve enable_chunked_prefill: takes a value installed, type flag recorded"],
    ),
    (
        _alter(lambda c: c["options"]["port"].update(default=9000)),
        ["serve port: default 9000 installed, 8000 recorded"],
    ),
    (
        _alter(lambda c: c["completion_request"]["fields_lem_sends"].pop("min_tokens")),
        ["CompletionRequest.min_tokens: recorded in the contract, not a field of the installed CompletionRequest"],
    ),
    (
        _alter(lambda c: c["completion_request"].update(extra="ignore")),
        ["CompletionRequest: extra='ignore' installed (unknown request fields), 'forbid' recorded"],
    ),
    (
        _alter(lambda c: c["stream_options"]["fields"].update(include_obfuscation={"type": "bool", "default": None})),
        ["StreamOptions.include_obfuscation: a field of the installed StreamOptions, not recorded in the contract"],
    ),
]


@pytest.mark.parametrize(("installed", "expected"), SERVE_ALTERATIONS)
def test_serve_contract_check_reports_each_difference(
    installed: dict[str, Any], expected: list[str], install_double: Callable[[dict[str, Any]], None]
) -> None:
    """Were the transcription wrong in any of these ways, the check run where TensorRT-LLM is installed says so."""
    install_double(installed)
    found = CHECK.serve_differences(SERVE_CONTRACT)
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found
    assert CHECK.main(["--serve"]) == 1


def test_serve_contract_check_without_the_serve_command_says_so(
    install_double: Callable[[dict[str, Any]], None], tmp_path: Path
) -> None:
    install_double(SERVE_CONTRACT)
    (tmp_path / "site" / "tensorrt_llm" / "commands" / "serve.py").unlink()
    (found,) = CHECK.serve_differences(SERVE_CONTRACT)
    assert found.startswith("trtllm-serve: tensorrt_llm.commands.serve.main cannot be imported (ModuleNotFoundError")


def test_serve_contract_check_without_tensorrt_llm_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)
    assert CHECK.main(["--serve"]) == 2
    assert "tensorrt_llm cannot be imported here" in capsys.readouterr().err
