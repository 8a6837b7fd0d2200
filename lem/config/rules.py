"""Semantic validation: the rules every backend shares (each backend's own live in its rules.py, listed by its spec).

Hydra's structured config already rejects unknown keys and wrong types; these rules catch values that are
well-typed but out of range, impossible together, or impossible on this machine. Warnings never block a run;
errors always do. Messages name the key, the value and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from typing import Any

from lem.backends.escape_hatches import Accepted, escape_hatch_fields, typed_keywords
from lem.backends.registry import BACKENDS
from lem.config.decoder import resolved_decoder
from lem.config.findings import Finding, Rule, errors
from lem.config.introspection import iter_fields
from lem.config.machine import MachineFacts
from lem.config.scenario_rules import RULES as SCENARIO_RULES
from lem.config.schema import CURRENT_SCHEMA_VERSION, SAMPLING_FIELDS, ExperimentConfig

#: The validation API: `validate` gives the findings, `errors` picks the blocking ones.
__all__ = ["Finding", "errors", "validate"]


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _field_findings(config: ExperimentConfig) -> Iterable[Finding]:
    """Allowed values and numeric bounds, read from each field's `param` metadata."""
    leaves = [(key, f, _get(config, key)) for key, f in iter_fields(ExperimentConfig)]
    leaves += [(f"backend.{key}", f, _get(config.backend, key)) for key, f in iter_fields(type(config.backend))]
    scenario_fields = iter_fields(type(config.scenario), "scenario.")
    leaves += [(key, f, _get(config, key)) for key, f in scenario_fields if key != "scenario.name"]
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


def _schema_version(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
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


def _deferred(param: str, rule: str, facts: MachineFacts) -> Finding:
    """A hardware rule the facts cannot judge (a job meant for another machine): the job judges it on its node."""
    assert facts.target is not None
    return Finding(
        "HARDWARE_DEFERRED",
        "warning",
        param,
        f"deferred to the job's node: {rule}; what hydra/launcher={facts.target.launcher} requests "
        f"({facts.target.request}) does not say, and the job checks it on its node before anything loads",
    )


def _gpus_a_job_gets(facts: MachineFacts, count: int) -> str:
    """`count` GPUs as the facts know them, for messages: visible here, or requested per job from SLURM."""
    if facts.target is None:
        return f"{count} are visible"
    return f"hydra/launcher={facts.target.launcher} requests {count} per job ({facts.target.request})"


def _skip_conditions(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """Hardware/package requirements, from the same skip conditions that introspection publishes."""
    for condition in BACKENDS[config.backend.name].skip_conditions:
        name = condition.param.partition(".")[2]
        if condition.value != getattr(config.backend, name):
            continue
        if name == "name" or name in (config.backend.PARALLEL_KEYS or ()):  # _backend_installed, _parallelism
            continue
        applies = condition.applies(facts)
        if applies is None:
            yield _deferred(f"backend.{name}", f"{condition.value!r}: {condition.reason}", facts)
        elif applies:
            where = "this machine" if facts.target is None else "the requested machine"
            yield Finding(
                "NEEDS_HARDWARE",
                "error",
                f"backend.{name}",
                f"{condition.value!r}: {condition.reason}; choose another value on {where}",
            )


def _parallelism(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """GPUs one engine spans against the GPUs a job gets (visible here, or requested from SLURM)."""
    backend = config.backend
    needed = backend.gpus_spanned()
    if backend.PARALLEL_KEYS is None or needed <= 1:
        return
    tensor_key, pipeline_key = backend.PARALLEL_KEYS
    param = f"backend.{tensor_key}"
    sizes = f"{getattr(backend, tensor_key)} x {getattr(backend, pipeline_key)} (tensor x pipeline) needs {needed} GPUs"
    available = len(config.gpus) if config.gpus is not None else facts.gpu_count()
    if available is None:
        yield _deferred(param, sizes, facts)
    elif needed > available:
        more = "expose more GPUs" if facts.target is None else f"request {needed} (hydra.launcher.gres=gpu:{needed})"
        yield Finding(
            "PARALLELISM_EXCEEDS_GPUS",
            "error",
            param,
            f"{sizes} but {_gpus_a_job_gets(facts, available)}; lower the parallel sizes or {more}",
        )
    elif facts.target is not None:
        yield Finding("GPUS_REQUESTED", "info", param, f"{sizes}: {_gpus_a_job_gets(facts, available)}")


def _gpus(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """`gpus` names devices a job sees: the visible ones here, or 0..n-1 of the n a SLURM job is given."""
    if config.gpus is None:
        return
    count = facts.gpu_count()
    if count is None:
        yield _deferred("gpus", f"{config.gpus} must be visible CUDA devices", facts)
        return
    visible = {g.index for g in facts.gpus} if facts.target is None else set(range(count))
    missing = [i for i in config.gpus if i not in visible]
    if missing:
        where = "" if facts.target is None else f" in a job ({_gpus_a_job_gets(facts, count)})"
        yield Finding(
            "GPU_NOT_VISIBLE",
            "error",
            "gpus",
            f"{config.gpus} asks for {missing} but visible CUDA devices{where} are {sorted(visible) or 'none'}; "
            f"use gpus=null for all visible devices",
        )


def _greedy_sampling(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    if resolved_decoder(config)["do_sample"]:
        return
    for key in SAMPLING_FIELDS:
        if getattr(config.decoder, key) is not None:
            yield Finding(
                "SAMPLING_WHILE_GREEDY",
                "warning",
                f"decoder.{key}",
                "is ignored because decoding is greedy; set decoder.do_sample=true or a sampling "
                "decoder.preset (standard, creative, factual)",
            )


def _typed_field(config: ExperimentConfig, target: str, key: str) -> str | None:
    """The typed backend field that an escape-hatch key passed to `target` would duplicate, if any."""
    cls = type(config.backend)
    typed = typed_keywords(cls, target)
    if key in typed:
        return typed[key]
    return key if key in {f.name for f in fields(cls)} - {"name"} else None


def _extra_duplicates(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """Escape-hatch keys that a typed field sets (by its name, or as the engine keyword it maps to)."""
    for hatch, target in escape_hatch_fields(type(config.backend)).items():
        for key in getattr(config.backend, hatch):
            typed = _typed_field(config, target, key)
            if typed is not None:
                yield Finding(
                    "EXTRA_DUPLICATES_FIELD",
                    "error",
                    f"backend.{hatch}.{key}",
                    f"duplicates the typed field backend.{typed}; set backend.{typed} instead",
                )


def _unknown_engine_key(hatch: str, key: str, accepted: Accepted, typed: dict[str, str]) -> Finding:
    close = difflib.get_close_matches(key, sorted(accepted.names), n=1)
    if close and close[0] in typed:
        hint = f"did you mean backend.{typed[close[0]]}?"
    elif close:
        hint = f"did you mean backend.{hatch}.{close[0]}?"
    else:
        hint = f"see {accepted.where} for the valid names"
    caveat = f" ({accepted.caveat})" if accepted.caveat else ""
    return Finding(
        "UNKNOWN_ENGINE_ARG",
        "warning" if accepted.caveat else "error",
        f"backend.{hatch}.{key}",
        f"{key!r} is not an argument of {accepted.where}{caveat}; {hint}",
    )


def _read_keywords(config: ExperimentConfig, facts: MachineFacts, hatch: str) -> Accepted | str:
    """What the installed engine accepts in `hatch`, or why it cannot be read here."""
    spec = BACKENDS[config.backend.name]
    if not facts.has(spec.package):
        return f"the {spec.package} package is not installed here"
    try:
        return spec.keyword_readers[hatch](config)
    except Exception as ex:  # an engine's import can fail in any way (CUDA libraries, MPI, versions)
        return " ".join(str(ex).split())[:300]


def _escape_hatch_keys(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """Escape-hatch keys against what the installed engine accepts, before anything loads. Reading that imports the
    engine (vLLM: about 5 s), so only a hatch the config fills is read; where the engine cannot be imported, a
    warning says the keys were not checked. Keys of a typed field are _extra_duplicates' business."""
    cls = type(config.backend)
    for hatch, target in escape_hatch_fields(cls).items():
        keys = [k for k in getattr(config.backend, hatch) if _typed_field(config, target, k) is None]
        if not keys:
            continue
        listed = ", ".join(keys)
        accepted = _read_keywords(config, facts, hatch)
        if isinstance(accepted, str):
            message = f"{listed}: not checked before load ({accepted}); the engine checks them when it loads"
            yield Finding("ENGINE_ARGS_NOT_CHECKED", "warning", f"backend.{hatch}", message)
            continue
        typed = typed_keywords(cls, target)
        unknown = [_unknown_engine_key(hatch, k, accepted, typed) for k in keys if k not in accepted.names]
        yield from unknown
        if not unknown:
            message = f"{listed}: checked against {accepted.where}"
            yield Finding("ENGINE_ARGS_CHECKED", "info", f"backend.{hatch}", message)


def _added_keys(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    """Keys that a `+key=value` override added where no parameter is declared: Hydra adds them to the structured
    config without complaint, and nothing would ever read them."""

    def walk(node: Any, prefix: str) -> Iterable[Finding]:
        declared = [f.name for f in fields(node)]
        for name, value in vars(node).items():
            if name in declared:
                if is_dataclass(value):
                    yield from walk(value, f"{prefix}{name}.")
                continue
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
            of = f" of backend={config.backend.name}" if prefix == "backend." else ""
            yield Finding(
                "UNKNOWN_KEY",
                "error",
                f"{prefix}{name}",
                f"no such parameter{of}; {hint}run `python -m lem --cfg job` to list the valid keys",
            )

    yield from walk(config, "")


def _unsupported(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
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


def _backend_installed(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    spec = BACKENDS[config.backend.name]
    if not facts.has(spec.package):
        yield Finding(
            "BACKEND_NOT_INSTALLED",
            "warning",
            "backend",
            f"{spec.name!r} needs the {spec.package} package, which is not installed here; the run will fail at "
            f"load ({spec.install_hint})",
        )


#: Rules for every backend; each backend's own come from its spec.
_RULES: tuple[Rule, ...] = (
    _schema_version,
    _added_keys,
    _greedy_sampling,
    _extra_duplicates,
    _escape_hatch_keys,
    _unsupported,
    _skip_conditions,
    _parallelism,
    _gpus,
    _backend_installed,
    *SCENARIO_RULES,
)


def validate(config: ExperimentConfig, facts: MachineFacts) -> list[Finding]:
    """All findings for `config` on a machine described by `facts`; field-range errors come first."""
    name = config.backend.name
    if name not in BACKENDS:
        choices = ", ".join(sorted(BACKENDS))
        return [Finding("INVALID_VALUE", "error", "backend.name", f"{name!r} is not a backend; use one of: {choices}")]
    findings = list(_field_findings(config))
    for rule in (*_RULES, *BACKENDS[name].rules):
        findings.extend(rule(config, facts))
    return findings
