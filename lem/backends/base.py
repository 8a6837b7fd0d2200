"""The backend protocol: load, generate, report token counts and timings, release. No energy, no metrics.

The harness owns the measurement; a backend only does the work and says what it did, from real token ids.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lem.backends.registry import backend_spec
from lem.config.schema import ExperimentConfig
from lem.errors import LemError


@dataclass(frozen=True)
class RequestRecord:
    """One prompt's generation: token counts from the actual ids, times in seconds from the call's start.

    `finished_s` is when its output was complete; `first_token_s` is when its first new token existed, or None
    where the backend cannot observe it. `computed_output_tokens` is how many output positions the engine computed
    for it where that is more than `output_tokens` (a static batch keeps computing a row after its EOS), else None.
    """

    input_tokens: int
    output_tokens: int
    started_s: float
    finished_s: float
    first_token_s: float | None = None
    output_token_ids: tuple[int, ...] = ()
    computed_output_tokens: int | None = None


@dataclass
class LoadInfo:
    """What the backend reports after loading: the device it ran on and anything it chose on its own."""

    device: str
    parameters: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generation:
    """What one generate() call did: a record per prompt, in prompt order, and where its timings came from.

    `timing_source` names the clock behind first-token and finish times: "batch" (the batch's start and end),
    "engine_step" (lem's timestamps after each engine step), or an engine's own per-request stats. `origin_s` is the
    wall-clock time (`time.time()`) the records' times count from.
    """

    records: list[RequestRecord]
    timing_source: str
    origin_s: float


#: Called at each boundary a backend knows inside generate(): after each batch, or after each engine step in which a
#: request got its first token or finished; with the number of prompts finished since the previous call (maybe 0).
ProgressCallback = Callable[[int], None]


class Backend(Protocol):
    """What every backend implements; it holds no per-call state: each call returns what it measured.

    A backend object serves one job. Its engine (the loaded model) can outlive the job: the next job's backend, built
    from that job's config, takes it over with `adopt` when both have the same `engine_key`.
    """

    def engine_key(self) -> dict[str, Any]:
        """Everything that shapes the loaded engine, as JSON-ready data: the arguments this backend passes to the
        engine and the loader (translated from the config, never a hand-kept list of fields) and the model files'
        fingerprint. Computed without loading anything."""
        ...

    def load(self) -> LoadInfo:
        """Load the model (and tokenizer); called once, inside the metered load phase."""
        ...

    def adopt(self, previous: Backend) -> None:
        """Take over `previous`'s loaded engine instead of loading (same engine_key); `previous` is left empty, so
        closing it releases nothing. Per-job state (caches that would flatter this job, peak-memory counters) is
        reset; generation settings are this backend's own."""
        ...

    def generate(
        self, prompts: list[str], on_progress: ProgressCallback | None = None, output_tokens: int | None = None
    ) -> Generation:
        """Generate for every prompt, calling `on_progress` at each boundary. `output_tokens` set: exactly that many
        tokens per prompt this call (min = max; the prefill pass asks for 1), batched as the configured run is."""
        ...

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory since load, where the device reports it."""
        ...

    def close(self) -> None:
        """Release the model and its memory."""
        ...


def create_backend(config: ExperimentConfig, model_path: str, gpu_indices: list[int]) -> Backend:
    """Import the configured backend's module (only now: it pulls in torch/vllm) and construct it.

    A module whose engine package is missing or broken is a one-line LemError with the spec's install hint.
    """
    spec = backend_spec(config.backend.name)
    module_name, _, class_name = spec.implementation.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as ex:
        raise LemError(
            f"backend={spec.name}: the {spec.package} package cannot be imported here ({ex}); {spec.install_hint}",
            phase="load",
        ) from ex
    return getattr(module, class_name)(config, model_path, gpu_indices)


def require_leading_gpus(engine: str, gpu_indices: list[int]) -> None:
    """Engines that take the first visible GPUs: refuse `gpus` naming others, with the CUDA_VISIBLE_DEVICES fix."""
    if gpu_indices != list(range(len(gpu_indices))):
        raise LemError(
            f"gpus={gpu_indices}: {engine} uses the first {len(gpu_indices)} visible GPU(s); select them with "
            f"CUDA_VISIBLE_DEVICES={','.join(map(str, gpu_indices))} and gpus=null",
            phase="load",
        )
