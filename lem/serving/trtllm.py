"""trtllm-serve, TensorRT-LLM's OpenAI-compatible server: its command line and its LLM-API options file, pure functions
of the config (backend=tensorrt, fp_precision resolved).

Written against TensorRT-LLM 1.2.1 and tested by contract only (tests/contracts/trtllm_serve_cli.json): it needs an
NVIDIA GPU, and lem has not run it. The command is `trtllm-serve serve MODEL --backend tensorrt ...`
(`tensorrt_llm.commands.serve`, a click command):

- MODEL is the Hugging Face checkpoint: the server builds its TensorRT engine at every start, inside lem's metered load
  phase (lem's engine cache, backend.engine_cache_dir and force_rebuild, serves scenario=offline only).
- The flags carry what the serve command has flags for (SERVE_FLAGS). The rest of the offline backend's LLM keyword
  arguments (lem.backends.tensorrt.translate): dtype, batching_type, the escape hatches, and the nested build,
  plugin, KV-cache, scheduler, quantization and calibration objects, go into the `--extra_llm_api_options` YAML,
  which trtllm-serve lays over its flags' values (TensorRT-LLM's update_llm_args_with_extra_dict: a nested object in
  the file replaces the one the flags made, kv_cache_config is merged into it). A value a flag carries that also
  belongs to a nested object (max_batch_size in build_config, ...) is written in both places, equal. Enum values are
  written as their member names, which are the values TensorRT-LLM's string enums parse.
- The completions body: the offline SamplingParams arguments, less the one the request does not take
  (return_perf_metrics: the server's timings are read from the stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lem.backends.tensorrt.translate import NESTED, EnumMember, sampling_kwargs, translate
from lem.config.schema import ExperimentConfig
from lem.serving.child import LOOPBACK

#: The module whose click group is the `trtllm-serve` console script, and its command lem runs.
SERVE_MODULE = "tensorrt_llm.commands.serve"
SERVE_COMMAND = "serve"
#: Serve-command parameter (click's name) → the flag lem writes it with (both are in the contract).
SERVE_FLAGS = {
    "tokenizer": "--tokenizer",
    "host": "--host",
    "port": "--port",
    "backend": "--backend",
    "max_batch_size": "--max_batch_size",
    "max_num_tokens": "--max_num_tokens",
    "max_seq_len": "--max_seq_len",
    "max_beam_width": "--max_beam_width",
    "tensor_parallel_size": "--tp_size",
    "pipeline_parallel_size": "--pp_size",
    "free_gpu_memory_fraction": "--kv_cache_free_gpu_memory_fraction",
    "enable_chunked_prefill": "--enable_chunked_prefill",
    "extra_llm_api_options": "--extra_llm_api_options",
}
#: Switches (click flags that take no value): written when True, left out when False, their default.
SWITCHES = ("enable_chunked_prefill",)
#: (API object, keyword) → the serve parameter that carries it.
PARAMETER_OF = {
    ("LLM", "tokenizer"): "tokenizer",
    ("LLM", "tensor_parallel_size"): "tensor_parallel_size",
    ("LLM", "pipeline_parallel_size"): "pipeline_parallel_size",
    ("LLM", "enable_chunked_prefill"): "enable_chunked_prefill",
    ("BuildConfig", "max_batch_size"): "max_batch_size",
    ("BuildConfig", "max_num_tokens"): "max_num_tokens",
    ("BuildConfig", "max_seq_len"): "max_seq_len",
    ("BuildConfig", "max_beam_width"): "max_beam_width",
    ("KvCacheConfig", "free_gpu_memory_fraction"): "free_gpu_memory_fraction",
}
#: LLM keywords of the offline backend that a served model does not get: the model is the command's argument, and
#: per-request perf metrics are not read (lem times the stream).
_NOT_SERVED = ("model", "return_perf_metrics")


def _plain(value: Any) -> Any:
    """A value as YAML carries it: an enum by its member name."""
    return value.member if isinstance(value, EnumMember) else value


def llm_api_options(config: ExperimentConfig, model_path: str, special_tokens: int) -> dict[str, Any]:
    """The `--extra_llm_api_options` file's content: the LLM keyword arguments no flag carries, with the nested
    objects as mappings (those the offline backend would pass: a non-empty one)."""
    objects = {
        name: {key: _plain(value) for key, value in kwargs.items()}
        for name, kwargs in translate(config, model_path, special_tokens).items()
    }
    for child, (parent, keyword) in NESTED.items():
        if objects[child]:
            objects[parent][keyword] = objects[child]
    return {
        key: value
        for key, value in objects["LLM"].items()
        if key not in _NOT_SERVED and ("LLM", key) not in PARAMETER_OF
    }


def serve_parameters(
    config: ExperimentConfig, model_path: str, special_tokens: int, options_path: Path, port: int
) -> dict[str, Any]:
    """The serve command's parameters by click name, as it should parse them: the model, the TensorRT backend on
    127.0.0.1:`port`, the options file, and each translated value that has a flag (PARAMETER_OF)."""
    kwargs = translate(config, model_path, special_tokens)
    parameters: dict[str, Any] = {
        "model": model_path,
        "backend": "tensorrt",
        "host": LOOPBACK,
        "port": port,
        "extra_llm_api_options": str(options_path),
    }
    for (obj, keyword), name in PARAMETER_OF.items():
        if keyword in kwargs[obj]:
            parameters[name] = kwargs[obj][keyword]
    return parameters


def serve_argv(parameters: Mapping[str, Any]) -> list[str]:
    """`serve MODEL --flag value ...` (what follows `trtllm-serve`) for `parameters` (see serve_parameters)."""
    argv = [SERVE_COMMAND, str(parameters["model"])]
    for name, value in parameters.items():
        if name == "model":
            continue
        if name in SWITCHES:
            argv += [SERVE_FLAGS[name]] if value else []
        else:
            argv += [SERVE_FLAGS[name], str(value)]
    return argv


def completion_sampling(config: ExperimentConfig) -> dict[str, Any]:
    """The completions request's sampling fields: the offline SamplingParams arguments but return_perf_metrics
    (`detokenize` is dropped by lem.serving.load.completion_body, as for every server)."""
    return {key: value for key, value in sampling_kwargs(config).items() if key != "return_perf_metrics"}
