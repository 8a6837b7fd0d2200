"""The TensorRT-LLM backend: the LLM API's TensorRT-engine flow, with engines built once and cached on disk.

Written against TensorRT-LLM 1.2.1, whose API is recorded in tests/contracts/tensorrt_llm_api.json; not yet run on
hardware. The engine is built (or found in the cache) inside `load()`, so its energy is metered with the load phase.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lem.backends.base import Backend, Generation, LoadInfo, ProgressCallback, RequestRecord, require_leading_gpus
from lem.backends.checkpoint import model_fingerprint
from lem.backends.precision import gpu_capabilities, with_resolved_precision
from lem.backends.tensorrt.api import import_api
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.tensorrt.engine_cache import EngineCache, build_inputs, cache_key, engine_cache_root
from lem.backends.tensorrt.translate import BUILD_ONLY, NESTED, EnumMember, engine_arguments, translate
from lem.config.schema import ExperimentConfig
from lem.errors import LemError


def _real(api: dict[str, Any], value: Any) -> Any:
    return getattr(api[value.enum], value.member) if isinstance(value, EnumMember) else value


def _instantiate(api: dict[str, Any], kwargs: dict[str, dict[str, Any]], name: str) -> Any:
    """Construct API object `name` from its keyword arguments, with real enums and its nested objects inside."""
    args = {key: _real(api, value) for key, value in kwargs[name].items()}
    for child, (parent, keyword) in NESTED.items():
        if parent == name and kwargs.get(child):
            args[keyword] = _instantiate(api, kwargs, child)
    return api[name](**args)


def special_tokens_added(model_path: str) -> int:
    """Special tokens (BOS, ...) the model's tokenizer adds to a prompt; TensorRT-LLM counts them in max_input_len."""
    from transformers import AutoTokenizer

    return int(AutoTokenizer.from_pretrained(model_path).num_special_tokens_to_add())


def _required(obj: Any, attribute: str) -> Any:
    """`obj.attribute`, or a LemError saying that the installed TensorRT-LLM's outputs differ from 1.2.1's."""
    if not hasattr(obj, attribute):
        raise LemError(
            f"TensorRT-LLM's {type(obj).__name__} has no {attribute!r}: the installed tensorrt_llm differs from the "
            f"1.2.1 API lem was written against (see docs/backends.md)",
            phase="measure",
        )
    return getattr(obj, attribute)


def _perf_metrics_times(completion: Any) -> tuple[float, float] | None:
    """(first token, last token) in seconds after arrival, from CompletionOutput.request_perf_metrics."""
    timing = getattr(getattr(completion, "request_perf_metrics", None), "timing_metrics", None)
    if timing is None:
        return None
    first_s = (timing.first_token_time - timing.arrival_time).total_seconds()
    last_s = (timing.last_token_time - timing.arrival_time).total_seconds()
    return (first_s, last_s) if 0.0 <= first_s <= last_s else None


def _metrics_dict_times(output: Any) -> tuple[float, float] | None:
    """(TTFT, E2E) in seconds from RequestOutput.metrics_dict (keys are MetricNames members)."""
    by_name = {str(getattr(k, "name", k)).upper(): v for k, v in (getattr(output, "metrics_dict", None) or {}).items()}
    if by_name.get("TTFT") is None or by_name.get("E2E") is None:
        return None
    return float(by_name["TTFT"]), float(by_name["E2E"])


def request_records(outputs: Sequence[Any], batch_s: float) -> tuple[list[RequestRecord], str]:
    """Records of one generate() call that started at 0 s and returned after `batch_s`, and their timing source.

    Token counts come from the ids (prompt_token_ids, token_ids). Timings come from each request's
    request_perf_metrics where every output has them, else from metrics_dict, else the whole call ("batch"); the
    per-request ones count from the request's arrival in TensorRT-LLM's executor, taken as the call's start.
    """
    completions = [_required(output, "outputs")[0] for output in outputs]
    times: list[tuple[float, float] | None] = [_perf_metrics_times(c) for c in completions]
    source = "request_perf_metrics"
    if None in times:
        times, source = [_metrics_dict_times(o) for o in outputs], "metrics_dict"
    if None in times:
        times, source = [None] * len(outputs), "batch"
    records = []
    for output, completion, timing in zip(outputs, completions, times, strict=True):
        token_ids = tuple(_required(completion, "token_ids"))
        first_s, finished_s = timing if timing is not None else (None, batch_s)
        records.append(
            RequestRecord(
                input_tokens=len(_required(output, "prompt_token_ids")),
                output_tokens=len(token_ids),
                started_s=0.0,
                finished_s=finished_s,
                first_token_s=first_s,
                output_token_ids=token_ids,
            )
        )
    return records, source


class TensorRTBackend:
    """TensorRT-LLM's LLM API on the run's GPUs (the first tp_size × pp_size visible ones)."""

    def __init__(self, config: ExperimentConfig, model_path: str, gpu_indices: list[int]) -> None:
        assert isinstance(config.backend, TensorRTConfig)
        self._config = with_resolved_precision(config, model_path, gpu_capabilities(gpu_indices), allow_float32=False)
        self._model_path = model_path
        self._gpu_indices = gpu_indices
        self._llm: Any = None
        self._sampling_params: Any = None

    def _kwargs(self) -> dict[str, dict[str, Any]]:
        return translate(self._config, self._model_path, special_tokens_added(self._model_path))

    def engine_key(self) -> dict[str, Any]:
        """The model files, the config's part (`translate.engine_arguments`: every API object's keyword arguments but
        SamplingParams'), the special tokens the tokenizer adds (the workload's lengths count them) and the GPUs."""
        return {
            "model": model_fingerprint(self._model_path),
            **engine_arguments(self._config, self._model_path),
            "special_tokens": special_tokens_added(self._model_path),
            "gpus": self._gpu_indices,
        }

    def load(self) -> LoadInfo:
        """Build the engine (or reuse the cached one) and start TensorRT-LLM's runtime on it."""
        api, version = import_api()
        require_leading_gpus("TensorRT-LLM", self._gpu_indices)
        backend = self._config.backend
        assert isinstance(backend, TensorRTConfig)
        kwargs = self._kwargs()
        inputs = build_inputs(self._config, self._model_path, kwargs, version)
        key = cache_key(inputs)

        def build(staging: Path) -> None:
            # TensorRT-LLM builds into a temporary workspace and save() copies it: keep both on the cache's disk.
            workspace = {**kwargs, "LLM": {**kwargs["LLM"], "workspace": str(staging.parent)}}
            self._llm = _instantiate(api, workspace, "LLM")
            self._llm.save(str(staging))

        engine = EngineCache(engine_cache_root(self._config)).get_or_build(
            key, inputs, build, force=backend.force_rebuild
        )
        if not engine.built:
            runtime = {name: args for name, args in kwargs.items() if name not in BUILD_ONLY}
            runtime["LLM"] = {**kwargs["LLM"], "model": str(engine.path)}
            self._llm = _instantiate(api, runtime, "LLM")
        self._sampling_params = _instantiate(api, kwargs, "SamplingParams")
        device = ",".join(f"cuda:{i}" for i in self._gpu_indices) or "cuda"
        return LoadInfo(
            device=device,
            parameters=None,
            settings={
                "fp_precision": self._config.fp_precision,
                "engine_dir": str(engine.path),
                "built": engine.built,
                "build_s": engine.build_s,
                "engine_key": key,
                "tensorrt_llm_version": version,
            },
        )

    def generate(
        self, prompts: list[str], on_progress: ProgressCallback | None = None, output_tokens: int | None = None
    ) -> Generation:
        """Submit every prompt in one call (TensorRT-LLM batches in flight); records come back in prompt order.
        `output_tokens` set: SamplingParams with exactly that many tokens (min = max, EOS ignored) for this call."""
        assert self._llm is not None, "load() first"
        sampling_params = self._sampling_params
        if output_tokens is not None:
            api, _ = import_api()
            kwargs = self._kwargs()
            exact = {"max_tokens": output_tokens, "min_tokens": output_tokens, "ignore_eos": True}
            sampling_params = _instantiate(
                api, {**kwargs, "SamplingParams": {**kwargs["SamplingParams"], **exact}}, "SamplingParams"
            )
        started, origin_s = time.perf_counter(), time.time()
        outputs = self._llm.generate(prompts, sampling_params=sampling_params, use_tqdm=False)
        batch_s = time.perf_counter() - started
        records, timing_source = request_records(outputs, batch_s)
        if on_progress is not None:
            on_progress(len(prompts))
        return Generation(records, timing_source, origin_s)

    def adopt(self, previous: Backend) -> None:
        """Take over the previous job's runtime; this job's own SamplingParams."""
        assert isinstance(previous, TensorRTBackend)
        self._llm, previous._llm = previous._llm, None
        api, _ = import_api()
        self._sampling_params = _instantiate(api, self._kwargs(), "SamplingParams")

    def peak_memory_bytes(self) -> int | None:
        """None: the engine runs in TensorRT-LLM's worker processes, whose peak memory this process cannot read."""
        return None

    def close(self) -> None:
        """Shut TensorRT-LLM's runtime down (its executor and worker processes)."""
        llm, self._llm = self._llm, None
        if llm is not None and hasattr(llm, "shutdown"):
            llm.shutdown()
