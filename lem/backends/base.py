"""The backend protocol: load, generate, report token counts and timings, release. No energy, no metrics.

The harness owns the measurement; a backend only does the work and says what it did, from real token ids.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lem.config.schema import ExperimentConfig
from lem.errors import LemError


@dataclass(frozen=True)
class RequestRecord:
    """One prompt's generation: token counts from the actual ids, times in seconds from the call's start.

    `finished_s` is when its output was complete; `first_token_s` is when its first new token existed, or None
    where the backend cannot observe it.
    """

    input_tokens: int
    output_tokens: int
    started_s: float
    finished_s: float
    first_token_s: float | None = None
    output_token_ids: tuple[int, ...] = ()


@dataclass
class LoadInfo:
    """What the backend reports after loading: the device it ran on and anything it chose on its own."""

    device: str
    parameters: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[int], None]


class Backend(Protocol):
    """What every backend implements. `timing_source` says how first-token times were taken."""

    name: str
    timing_source: str

    def load(self) -> LoadInfo:
        """Load the model (and tokenizer); called once, inside the metered load phase."""
        ...

    def generate(self, prompts: list[str], on_progress: ProgressCallback | None = None) -> list[RequestRecord]:
        """Generate for every prompt, in order; `on_progress(n)` after each batch with the prompts it finished."""
        ...

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory since load, where the device reports it."""
        ...

    def close(self) -> None:
        """Release the model and its memory."""
        ...


#: Backends lem can run, as "module:class"; the others are configurable and validated but not yet runnable.
_IMPLEMENTATIONS = {
    "pytorch": "lem.backends.pytorch.backend:PyTorchBackend",
    "vllm": "lem.backends.vllm.backend:VLLMBackend",
    "tensorrt": "lem.backends.tensorrt.backend:TensorRTBackend",
}


def create_backend(config: ExperimentConfig, model_path: str, gpu_indices: list[int]) -> Backend:
    """Import the configured backend's module (only now: it pulls in torch/vllm) and construct it."""
    name = config.backend.name
    if name not in _IMPLEMENTATIONS:
        raise LemError(
            f"backend={name}: the config is valid, but lem cannot run this backend yet (see the README's "
            f"support table); use backend=pytorch",
            phase="load",
        )
    module_name, _, class_name = _IMPLEMENTATIONS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, model_path, gpu_indices)
