"""Semantic validation: every rule in one place, each returning findings (code, severity, param, message).

Hydra's structured config already rejects unknown keys and wrong types; these rules catch values that are
well-typed but out of range, impossible together, or impossible on this machine. Warnings never block a run;
errors always do. Messages name the key, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from lem.backends.pytorch.config import PyTorchConfig
from lem.backends.tensorrt.config import TensorRTConfig
from lem.backends.vllm.config import VLLMConfig
from lem.config.introspection import BACKEND_PACKAGES, get_param_skip_conditions, iter_fields
from lem.config.machine import MachineFacts
from lem.config.schema import CURRENT_SCHEMA_VERSION, DECODER_PRESETS, SAMPLING_FIELDS, ExperimentConfig

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One validation result; `param` is the Hydra key it concerns."""

    code: str
    severity: Severity
    param: str
    message: str

    def line(self) -> str:
        """One printable line."""
        return f"{self.severity.upper()} [{self.code}] {self.param}: {self.message}"


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _field_findings(config: ExperimentConfig) -> Iterable[Finding]:
    """Allowed values and numeric bounds, read from each field's `param` metadata."""
    leaves = [(key, f, _get(config, key)) for key, f in iter_fields(ExperimentConfig)]
    leaves += [(f"backend.{key}", f, _get(config.backend, key)) for key, f in iter_fields(type(config.backend))]
    for key, f, value in leaves:
        meta = f.metadata
        if value is None:
            continue
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            yield Finding("INVALID_VALUE", "error", key, f"{value!r} is not allowed; use one of: {allowed}")
        bounds = [("ge", ">=", lambda v, b: v >= b), ("gt", ">", lambda v, b: v > b), ("le", "<=", lambda v, b: v <= b)]
        for name, symbol, ok in bounds:
            bound = meta.get(name)
            if bound is not None and isinstance(value, int | float) and not ok(value, bound):
                yield Finding("OUT_OF_RANGE", "error", key, f"{value!r} must be {symbol} {bound}")


def _schema_version(config: ExperimentConfig) -> Iterable[Finding]:
    if config.schema_version is None:
        yield Finding(
            "SCHEMA_VERSION_MISSING",
            "info",
            "schema_version",
            f"not set; the current schema is {CURRENT_SCHEMA_VERSION} (add schema_version: "
            f"'{CURRENT_SCHEMA_VERSION}' to pin it)",
        )
    elif config.schema_version != CURRENT_SCHEMA_VERSION:
        yield Finding(
            "SCHEMA_VERSION_MISMATCH",
            "warning",
            "schema_version",
            f"{config.schema_version!r} differs from the current {CURRENT_SCHEMA_VERSION!r}; "
            f"check the config reference for renamed or removed fields",
        )


def _skip_conditions(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """Hardware/package requirements, from the same skip conditions that introspection publishes."""
    backend = config.backend.name
    for condition in get_param_skip_conditions().values():
        owner, _, name = condition.param.partition(".")
        if owner != backend or condition.value != getattr(config.backend, name) or not condition.applies(facts):
            continue
        if name in ("name", "tensor_parallel_size", "tp_size"):  # _backend_installed and _parallelism say these
            continue
        yield Finding(
            "NEEDS_HARDWARE",
            "error",
            f"backend.{name}",
            f"{condition.value!r}: {condition.reason}; choose another value on this machine",
        )


def _parallelism(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    backend = config.backend
    needed = backend.gpus_spanned()
    if backend.PARALLEL_KEYS is None or needed <= 1:
        return
    tensor_key, pipeline_key = backend.PARALLEL_KEYS
    available = len(config.gpus) if config.gpus is not None else len(facts.gpus)
    if needed > available:
        yield Finding(
            "PARALLELISM_EXCEEDS_GPUS",
            "error",
            f"backend.{tensor_key}",
            f"{getattr(backend, tensor_key)} x {getattr(backend, pipeline_key)} (tensor x pipeline) needs {needed} "
            f"GPUs but {available} are visible; lower the parallel sizes or expose more GPUs",
        )


def _gpus(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    if config.gpus is None:
        return
    visible = {g.index for g in facts.gpus}
    missing = [i for i in config.gpus if i not in visible]
    if missing:
        yield Finding(
            "GPU_NOT_VISIBLE",
            "error",
            "gpus",
            f"{config.gpus} asks for {missing} but visible CUDA devices are {sorted(visible) or 'none'}; "
            f"use gpus=null for all visible devices",
        )


def _precision(config: ExperimentConfig) -> Iterable[Finding]:
    backend = config.backend
    if isinstance(backend, TensorRTConfig) and config.fp_precision == "float32":
        yield Finding(
            "TRT_FLOAT32",
            "error",
            "fp_precision",
            "'float32' is not supported by lem's TensorRT-LLM backend; use fp_precision=float16 or bfloat16",
        )
    if isinstance(backend, VLLMConfig) and backend.dtype not in (None, "auto", config.fp_precision):
        yield Finding(
            "DTYPE_DIFFERS",
            "warning",
            "backend.dtype",
            f"{backend.dtype!r} overrides fp_precision={config.fp_precision!r} for vLLM; "
            f"drop backend.dtype to use fp_precision",
        )


def _context_length(config: ExperimentConfig) -> Iterable[Finding]:
    needed = config.max_input_tokens + config.max_output_tokens
    backend = config.backend
    limits = []
    if isinstance(backend, VLLMConfig):
        limits.append(("backend.max_model_len", backend.max_model_len, needed))
    if isinstance(backend, TensorRTConfig):
        limits.append(("backend.max_seq_len", backend.max_seq_len, needed))
        limits.append(("backend.max_input_len", backend.max_input_len, config.max_input_tokens))
    for key, limit, need in limits:
        if limit is not None and limit < need:
            yield Finding(
                "CONTEXT_TOO_LONG",
                "error",
                key,
                f"{limit} is smaller than the {need} tokens the workload needs (max_input_tokens="
                f"{config.max_input_tokens}, max_output_tokens={config.max_output_tokens}); raise {key} "
                f"or lower the token limits",
            )


def resolved_decoder(config: ExperimentConfig) -> dict[str, Any]:
    """Decoder settings with the preset applied to every field left null."""
    decoder = asdict(config.decoder)
    preset = DECODER_PRESETS.get(decoder.pop("preset") or "", {})
    resolved = {k: (v if v is not None else preset.get(k)) for k, v in decoder.items()}
    resolved["do_sample"] = bool(resolved["do_sample"])
    return resolved


def decoder_values(config: ExperimentConfig) -> tuple[bool, dict[str, Any]]:
    """(whether decoding samples, the decoder values a backend passes on): the sampling fields only when sampling,
    repetition_penalty either way, nothing left null. How greedy decoding is spelled is each backend's business."""
    decoder = resolved_decoder(config)
    sample = decoder.pop("do_sample")
    return sample, {k: v for k, v in decoder.items() if v is not None and (sample or k == "repetition_penalty")}


def _greedy_sampling(config: ExperimentConfig) -> Iterable[Finding]:
    if resolved_decoder(config)["do_sample"]:
        return
    set_fields = [f"decoder.{k}" for k in SAMPLING_FIELDS if getattr(config.decoder, k) is not None]
    backend = config.backend
    if isinstance(backend, PyTorchConfig):
        set_fields += [
            f"backend.{k}" for k in ("typical_p", "epsilon_cutoff", "eta_cutoff") if getattr(backend, k) is not None
        ]
    for key in set_fields:
        yield Finding(
            "SAMPLING_WHILE_GREEDY",
            "warning",
            key,
            "is ignored because decoding is greedy; set decoder.do_sample=true or a sampling "
            "decoder.preset (standard, creative, factual)",
        )


def _extra_duplicates(config: ExperimentConfig) -> Iterable[Finding]:
    backend = config.backend
    typed = {f.name for f in fields(backend)} - {"name"}
    for hatch in ("extra", "extra_load", "extra_build_args", "extra_runtime_args"):
        for key in getattr(backend, hatch, None) or {}:
            if key in typed:
                yield Finding(
                    "EXTRA_DUPLICATES_FIELD",
                    "error",
                    f"backend.{hatch}.{key}",
                    f"duplicates the typed field backend.{key}; set backend.{key} instead",
                )


def _unsupported(config: ExperimentConfig) -> Iterable[Finding]:
    """Fields kept for config compatibility that the backend no longer accepts: never passed on, never dropped."""
    for key, f in iter_fields(type(config.backend)):
        reason = f.metadata.get("unsupported")
        value = getattr(config.backend, key)
        if reason and value is not None:
            yield Finding(
                "PARAM_UNSUPPORTED",
                "error",
                f"backend.{key}",
                f"{value!r}: {reason}; remove it (lem never passes it on)",
            )


def _trt_quantization(config: ExperimentConfig) -> Iterable[Finding]:
    backend = config.backend
    if not isinstance(backend, TensorRTConfig) or backend.quantization not in ("int4_awq", "int4_gptq"):
        return
    if backend.calib_dataset is None and not backend.quantized_checkpoint:
        yield Finding(
            "QUANT_NEEDS_CALIBRATION",
            "error",
            "backend.quantization",
            f"{backend.quantization!r} needs calibration data or a pre-quantized checkpoint; set "
            f"backend.calib_dataset=... or backend.quantized_checkpoint=true",
        )


def _backend_installed(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    package = BACKEND_PACKAGES[config.backend.name]
    if not facts.has(package):
        yield Finding(
            "BACKEND_NOT_INSTALLED",
            "warning",
            "backend",
            f"{config.backend.name!r} needs the {package} package, which is not installed here; the run "
            f"will fail at load (see docs/backends.md for how to install it)",
        )


_RULES: tuple[Callable[..., Iterable[Finding]], ...] = (
    _schema_version,
    _precision,
    _context_length,
    _greedy_sampling,
    _extra_duplicates,
    _unsupported,
    _trt_quantization,
)
_MACHINE_RULES: tuple[Callable[..., Iterable[Finding]], ...] = (
    _skip_conditions,
    _parallelism,
    _gpus,
    _backend_installed,
)


def validate(config: ExperimentConfig, facts: MachineFacts) -> list[Finding]:
    """All findings for `config` on a machine described by `facts`; field-range errors come first."""
    findings = list(_field_findings(config))
    for rule in _RULES:
        findings.extend(rule(config))
    for machine_rule in _MACHINE_RULES:
        findings.extend(machine_rule(config, facts))
    return findings


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that block a run."""
    return [f for f in findings if f.severity == "error"]
