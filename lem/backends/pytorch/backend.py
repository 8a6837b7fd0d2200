"""The PyTorch backend: transformers AutoModelForCausalLM + generate, batched as PyTorchConfig says."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from lem.backends.base import Backend, Generation, LoadInfo, ProgressCallback, RequestRecord
from lem.backends.checkpoint import model_fingerprint
from lem.backends.precision import gpu_capabilities, with_resolved_precision
from lem.backends.pytorch.batching import plan_batches
from lem.backends.pytorch.config import PyTorchConfig
from lem.backends.pytorch.translate import engine_arguments, from_pretrained_arguments
from lem.config.decoder import decoder_values
from lem.config.schema import ExperimentConfig

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: PyTorchConfig fields passed by name to generate() when set (not None).
_GENERATE_FIELDS = tuple(
    f.name
    for f in fields(PyTorchConfig)
    if f.metadata.get("maps_to") == "generate" and f.name not in ("extra", "assistant_model")
)


def generate_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """generate() keyword arguments: token limits, the resolved decoder, the backend's generate fields, `extra`."""
    backend = config.backend
    assert isinstance(backend, PyTorchConfig)
    kwargs: dict[str, Any] = {"max_new_tokens": config.max_output_tokens}
    if config.fixed_length:
        kwargs["min_new_tokens"] = config.max_output_tokens
    kwargs["do_sample"], values = decoder_values(config)
    kwargs.update(values)
    kwargs.update({name: getattr(backend, name) for name in _GENERATE_FIELDS if getattr(backend, name) is not None})
    kwargs.update(backend.extra)
    return kwargs


def _quantization_config(arguments: dict[str, Any]) -> Any:
    """A BitsAndBytesConfig from `translate.quantization_arguments` (the compute dtype named, made torch's)."""
    from transformers import BitsAndBytesConfig

    compute = arguments.get("bnb_4bit_compute_dtype")
    if compute is not None:
        arguments = {**arguments, "bnb_4bit_compute_dtype": _DTYPES[compute]}
    return BitsAndBytesConfig(**arguments)


def _output_length(new_tokens: list[int], eos_ids: set[int], fixed_length: bool) -> int:
    """New tokens up to and including the first EOS (fixed length: all of them; EOS was suppressed)."""
    if fixed_length:
        return len(new_tokens)
    for position, token in enumerate(new_tokens):
        if token in eos_ids:
            return position + 1
    return len(new_tokens)


class PyTorchBackend:
    """transformers generation on one device (CUDA when the run has GPUs and torch sees CUDA, else CPU)."""

    def __init__(self, config: ExperimentConfig, model_path: str, gpu_indices: list[int]) -> None:
        assert isinstance(config.backend, PyTorchConfig)
        self._backend = config.backend
        self._model_path = model_path
        use_cuda = bool(gpu_indices) and torch.cuda.is_available()
        self._device = torch.device(f"cuda:{gpu_indices[0]}") if use_cuda else torch.device("cpu")
        self._config = with_resolved_precision(config, model_path, gpu_capabilities(gpu_indices) if use_cuda else None)
        self._model: Any = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._assistant: Any = None
        self._generate_kwargs = generate_kwargs(config)

    def _load_kwargs(self) -> dict[str, Any]:
        """from_pretrained's keyword arguments (`translate.from_pretrained_arguments`) with torch's dtype and a
        BitsAndBytesConfig."""
        kwargs = from_pretrained_arguments(self._config)
        kwargs["dtype"] = _DTYPES[kwargs["dtype"]]
        if "quantization_config" in kwargs:
            kwargs["quantization_config"] = _quantization_config(kwargs["quantization_config"])
        return kwargs

    def engine_key(self) -> dict[str, Any]:
        """The model files, the config's part (`translate.engine_arguments`: from_pretrained's arguments and what
        load() applies around them) and the device."""
        return {
            "model": model_fingerprint(self._model_path),
            **engine_arguments(self._config, self._model_path),
            "device": str(self._device),
        }

    def load(self) -> LoadInfo:
        """Load tokenizer and model onto the device; apply torch_threads and torch_compile."""
        backend = self._backend
        if backend.torch_threads is not None:
            torch.set_num_threads(backend.torch_threads)
        tokenizer = AutoTokenizer.from_pretrained(self._model_path, trust_remote_code=backend.trust_remote_code)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self._model_path, **self._load_kwargs())
        if backend.device_map is None and backend.quantization is None:
            model = model.to(self._device)
        model.eval()
        if backend.torch_compile != "off":
            model.forward = torch.compile(
                model.forward, mode=backend.torch_compile, backend=backend.torch_compile_backend
            )
        if backend.assistant_model is not None:
            self._assistant = (
                AutoModelForCausalLM.from_pretrained(backend.assistant_model, dtype=_DTYPES[self._config.fp_precision])
                .to(self._device)
                .eval()
            )
            self._generate_kwargs["assistant_model"] = self._assistant
        if self._device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self._device)
        self._model, self._tokenizer = model, tokenizer
        return LoadInfo(
            device=str(self._device),
            parameters=sum(p.numel() for p in model.parameters()),
            settings={
                "fp_precision": self._config.fp_precision,
                "torch_threads": torch.get_num_threads(),
                "dtype": str(model.dtype),
            },
        )

    def adopt(self, previous: Backend) -> None:
        """Take over the previous job's model, tokenizer and assistant; reset the peak-memory counter."""
        assert isinstance(previous, PyTorchBackend)
        self._model, self._tokenizer, self._assistant = previous._model, previous._tokenizer, previous._assistant
        previous._model = previous._tokenizer = previous._assistant = None
        if self._assistant is not None:
            self._generate_kwargs["assistant_model"] = self._assistant
        if self._device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self._device)

    def generate(
        self, prompts: list[str], on_progress: ProgressCallback | None = None, output_tokens: int | None = None
    ) -> Generation:
        """Generate batch by batch as planned (for the configured output length, whatever `output_tokens` asks);
        records in prompt order, timed per batch ("batch": no per-token timestamps, a request finishes when its batch
        does). A row that finished early still computed the batch's every position: `computed_output_tokens`."""
        assert self._model is not None and self._tokenizer is not None, "load() first"
        tokenizer, backend = self._tokenizer, self._backend
        encoded = tokenizer(prompts, add_special_tokens=True)["input_ids"]  # once: plans batches, then is padded
        batches = plan_batches(
            [len(ids) for ids in encoded],
            backend.batching_strategy,
            backend.batch_size,
            backend.max_tokens_per_batch,
            self._config.max_output_tokens,
        )
        kwargs = self._generate_kwargs
        fixed_length = self._config.fixed_length or output_tokens is not None
        if output_tokens is not None:
            kwargs = {**kwargs, "max_new_tokens": output_tokens, "min_new_tokens": output_tokens}
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        records: dict[int, RequestRecord] = {}
        torch.manual_seed(self._config.random_seed)
        origin, origin_s = time.perf_counter(), time.time()
        for batch in batches:
            started = time.perf_counter() - origin
            inputs = tokenizer.pad(
                {"input_ids": [encoded[i] for i in batch]},
                return_tensors="pt",
                pad_to_multiple_of=backend.pad_to_multiple_of,
            ).to(self._device)
            with torch.inference_mode():
                output = self._model.generate(**inputs, **kwargs)
            finished = time.perf_counter() - origin
            width = inputs["input_ids"].shape[1]
            input_counts = inputs["attention_mask"].sum(dim=1).tolist()
            for row, index in enumerate(batch):
                new_tokens = output[row, width:].tolist()
                n_out = _output_length(new_tokens, eos_ids, fixed_length)
                records[index] = RequestRecord(
                    input_tokens=int(input_counts[row]),
                    output_tokens=n_out,
                    started_s=started,
                    finished_s=finished,
                    output_token_ids=tuple(new_tokens[:n_out]),
                    computed_output_tokens=len(new_tokens) if len(new_tokens) > n_out else None,
                )
            if on_progress is not None:
                on_progress(len(batch))
        return Generation([records[i] for i in range(len(prompts))], "batch", origin_s)

    def peak_memory_bytes(self) -> int | None:
        """Peak CUDA memory allocated since load; None on CPU."""
        return int(torch.cuda.max_memory_allocated(self._device)) if self._device.type == "cuda" else None

    def close(self) -> None:
        """Drop the model and free cached device memory."""
        self._model = self._assistant = self._tokenizer = None
        self._generate_kwargs.pop("assistant_model", None)
        if self._device.type == "cuda":
            torch.cuda.empty_cache()
