"""MachineFacts: what validation needs to know about this machine, read cheaply (NVML, find_spec; no torch), and
about the machine a job is meant for when that is another one (a SLURM node, as its launcher requests it)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lem.errors import LemError


@dataclass(frozen=True)
class GpuFact:
    """One visible CUDA device; `index` is as the process sees it (after CUDA_VISIBLE_DEVICES)."""

    index: int
    name: str
    compute_capability: tuple[int, int]


#: Where a dry run of a sweep meant for SLURM finds the job target (JobTarget as JSON); set by `python -m lem`.
TARGET_ENV = "LEM_JOB_TARGET"


@dataclass(frozen=True)
class JobTarget:
    """The machine a job is meant for when it is not this one: what a SLURM launcher requests per job.

    `gpu_count` is the GPUs each job gets; None where the request does not say in a form lem reads. `request` is
    where that came from (e.g. "hydra.launcher.gres=gpu:4"), `launcher` the launcher option. A request says nothing
    about compute capability or memory: rules that need them are judged on the job's node.
    """

    launcher: str
    request: str
    gpu_count: int | None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobTarget:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class MachineFacts:
    """Visible GPUs and installed optional packages; `target`, where a job is meant for another machine."""

    gpus: tuple[GpuFact, ...] = ()
    packages: frozenset[str] = field(default_factory=frozenset)
    target: JobTarget | None = None

    def has(self, package: str) -> bool:
        """Whether `package` is importable here (the job's node runs the same installation)."""
        return package in self.packages

    def gpu_count(self) -> int | None:
        """GPUs a job gets: the target's request, else the visible ones; None where the request does not say."""
        return self.target.gpu_count if self.target is not None else len(self.gpus)


#: Optional packages whose presence changes what a config can do.
OPTIONAL_PACKAGES = ("torch", "transformers", "vllm", "tensorrt_llm", "flash_attn", "bitsandbytes", "datasets")


#: How CUDA_VISIBLE_DEVICES names a MIG instance (`MIG-<uuid>`, or `MIG-GPU-<uuid>/<gi>/<ci>` before CUDA 11.2).
MIG_PREFIX = "MIG-"
#: Why lem refuses MIG: the end of every refusal.
_MIG_REASON = (
    "NVML reports a whole GPU's power, not a slice's, so lem meters whole GPUs only: set CUDA_VISIBLE_DEVICES to "
    "GPU indices or GPU-... UUIDs of GPUs without MIG"
)


def _mig_refusal(what: str) -> LemError:
    return LemError(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}: {what}; {_MIG_REASON}")


def _nvml_index(entry: str, count: int, uuids: list[str]) -> int | None:
    """The NVML index one CUDA_VISIBLE_DEVICES entry names: an index, or a GPU UUID or a unique prefix of one."""
    if entry.startswith(MIG_PREFIX):
        raise _mig_refusal(f"{entry!r} is a MIG instance")
    if entry.isdigit():
        return int(entry) if int(entry) < count else None
    matches = [i for i, uuid in enumerate(uuids) if entry.startswith("GPU-") and uuid.startswith(entry)]
    return matches[0] if len(matches) == 1 else None


def visible_nvml_indices() -> list[int]:
    """NVML indices of the GPUs this process may use, in CUDA's order (the caller has initialised NVML).

    CUDA_VISIBLE_DEVICES unset: every GPU. Its entries are indices (taken as they are) or GPU UUIDs, whole or a
    unique prefix (found by enumerating NVML's index → UUID); as in CUDA, the list ends before the first entry that
    names no GPU, or one named before. A MIG instance, or a visible GPU in MIG mode, is a one-line LemError.
    """
    import pynvml

    count = pynvml.nvmlDeviceGetCount()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    indices = list(range(count)) if visible is None else []
    if visible is not None:
        uuids = [pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        for entry in visible.split(","):
            index = _nvml_index(entry.strip(), count, uuids)
            if index is None or index in indices:
                break
            indices.append(index)
    for index in indices:
        try:
            mig_mode, _pending = pynvml.nvmlDeviceGetMigMode(pynvml.nvmlDeviceGetHandleByIndex(index))
        except pynvml.NVMLError_NotSupported:  # before Ampere
            continue
        if mig_mode == pynvml.NVML_DEVICE_MIG_ENABLE:
            raise _mig_refusal(f"GPU {index} is in MIG mode")
    return indices


def _probe_gpus() -> tuple[GpuFact, ...]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library, no device: no GPUs
        return ()
    try:
        facts = []
        for visible_index, nvml_index in enumerate(visible_nvml_indices()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
            name = pynvml.nvmlDeviceGetName(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            facts.append(GpuFact(visible_index, name if isinstance(name, str) else name.decode(), (major, minor)))
        return tuple(facts)
    finally:
        pynvml.nvmlShutdown()


def probe_machine() -> MachineFacts:
    """Read this machine's facts, with the job target of a dry run planned for SLURM ($LEM_JOB_TARGET, which
    `python -m lem` sets for such a dry run only); takes milliseconds and imports no ML framework."""
    packages = frozenset(p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is not None)
    target = os.environ.get(TARGET_ENV)
    return MachineFacts(gpus=_probe_gpus(), packages=packages, target=JobTarget.from_json(target) if target else None)


#: Launcher fields that request GPUs, in the order lem reads them (additional_parameters: any other sbatch option).
_GPU_FIELDS = ("gres", "gpus_per_node", "gpus_per_task")
_GPU_PARAMETERS = ("gres", "gpus", "gpus_per_node", "gpus_per_task")


def _typed_count(spec: str) -> int | None:
    """GPUs in SLURM's `[type:]count` (a type alone, or nothing, means 1); None where it is not of that form."""
    parts = spec.split(":") if spec else []
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        return None
    return int(parts[-1]) if parts and parts[-1].isdigit() else 1


def _gpus_in(key: str, value: Any) -> int | None:
    """GPUs per job that one request field asks for: gres "gpu:4", "gpu:a100:4" or "gpu" (other resources after
    commas count none), --gpus-per-* 4 or "a100:4"; None where lem cannot read it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not key.endswith("gres"):
        return _typed_count(text)
    entries = [e.strip() for e in text.split(",")]
    counts = [_typed_count(e.removeprefix("gpu").removeprefix(":")) for e in entries if e.split(":")[0] == "gpu"]
    return None if None in counts else sum(c for c in counts if c is not None)


def slurm_target(launcher: Mapping[str, Any], choice: str) -> JobTarget | None:
    """The job target a launcher config (`hydra.launcher`, option `choice`) describes: for a submitit SLURM
    launcher, the GPUs it requests per job (gres, gpus_per_node, gpus_per_task, or those in additional_parameters;
    none of them: 0 GPUs); None for a launcher that runs jobs on this machine."""
    if not str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        return None
    extra = launcher.get("additional_parameters") or {}
    requests = [(f"hydra.launcher.{k}", launcher.get(k)) for k in _GPU_FIELDS]
    requests += [(f"hydra.launcher.additional_parameters.{k}", extra.get(k)) for k in _GPU_PARAMETERS]
    for key, value in requests:
        if value is not None:
            return JobTarget(choice, f"{key}={value}", _gpus_in(key, value))
    return JobTarget(choice, "no GPUs: hydra.launcher.gres, gpus_per_node and gpus_per_task are null", 0)


@dataclass(frozen=True)
class SkipCondition:
    """A parameter value that cannot be exercised on some machines: `applies(facts)` is True where it cannot, None
    where the facts cannot tell (a job meant for another machine, whose request does not say; judged there)."""

    param: str
    value: Any
    reason: str
    applies: Callable[[MachineFacts], bool | None]


#: Why fp8 needs new hardware, for the skip conditions of every backend that offers it.
FP8_REASON = "needs a GPU of compute capability 8.9 or newer (Ada, Hopper)"


def below_sm89(facts: MachineFacts) -> bool | None:
    """No GPU, or one older than compute capability 8.9 (fp8 needs Ada or Hopper); None for a job target that
    requests GPUs (a request says nothing about compute capability)."""
    if facts.target is not None:
        return True if facts.target.gpu_count == 0 else None
    cc = min((g.compute_capability for g in facts.gpus), default=None)
    return cc is None or cc < (8, 9)


def needs_cuda_and(package: str) -> Callable[[MachineFacts], bool | None]:
    """A predicate true where a job gets no GPU or `package` is missing."""

    def applies(facts: MachineFacts) -> bool | None:
        count = facts.gpu_count()
        return None if count is None else count == 0 or not facts.has(package)

    return applies


def needs_gpus(count: int) -> Callable[[MachineFacts], bool | None]:
    """A predicate true where a job gets fewer than `count` GPUs."""

    def applies(facts: MachineFacts) -> bool | None:
        available = facts.gpu_count()
        return None if available is None else available < count

    return applies
