"""Compare the TensorRT-LLM API lem is written against (its contract) with the tensorrt_llm installed here.

The contract, tests/contracts/tensorrt_llm_api.json, was transcribed by hand from TensorRT-LLM 1.2.1's sources; lem's
tests stand on it. This script reads the installed package by introspection (pydantic and dataclass fields,
`inspect.signature`, class attributes and the sources of output classes) and prints one line per difference:

- every name lem imports, from the module the contract names (and LLM's keyword class);
- every recorded object's keywords: recorded but missing, present but not recorded, recorded as absent but present,
  and defaults where the contract records a plain value (types are not compared: the notation is lem's own);
- enum members, LLM's methods and their parameters, and the fields of RequestOutput and CompletionOutput.

With --serve it compares trtllm-serve's contract (tests/contracts/trtllm_serve_cli.json, what scenario=serving
passes to it) instead: the serve command's arguments and options (click: names, flags, switches, choices,
defaults), the completions request fields lem sends (required ones included, and that unknown fields are refused),
and the stream options.

    python scripts/check_trtllm_contract.py [--contract PATH]
    python scripts/check_trtllm_contract.py --serve [--contract PATH]

Exit status: 0 when the installed API matches, 1 when it differs, 2 when tensorrt_llm cannot be imported.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lem.backends.escape_hatches import accepted_keywords
from lem.backends.tensorrt.api import LLM_ARGS, llm_keywords

CONTRACT = Path(__file__).resolve().parent.parent / "tests" / "contracts" / "tensorrt_llm_api.json"
SERVE_CONTRACT = CONTRACT.parent / "trtllm_serve_cli.json"
REQUIRED = "<required>"
#: A default the contract records that is not a plain value ("<KvCacheConfig()>", a dict), or one read from a
#: default factory: not compared.
_UNCOMPARABLE = object()
_PLAIN = (type(None), bool, int, float, str)
_NAMED = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def recorded_parameters(signature: str) -> list[str]:
    """Parameter names of a signature as the contract writes it: "generate(inputs, sampling_params=None) -> ..."."""
    inside = signature[signature.index("(") + 1 : signature.index(")")]
    names = [part.split("=")[0].split(":")[0].strip() for part in inside.split(",")]
    return [name for name in names if name and not name.startswith("*")]


def _field_default(info: Any) -> Any:
    """A pydantic FieldInfo's or dataclass Field's default: REQUIRED, a value, or _UNCOMPARABLE (a factory)."""
    if isinstance(info, dataclasses.Field):
        if info.default is not dataclasses.MISSING:
            return info.default
        return REQUIRED if info.default_factory is dataclasses.MISSING else _UNCOMPARABLE
    if info.is_required():
        return REQUIRED
    return _UNCOMPARABLE if info.default_factory is not None else info.default


def installed_defaults(target: Any) -> dict[str, Any]:
    """Keyword → default of a class or callable, read as `accepted_keywords` reads its keywords."""
    model_fields = getattr(target, "model_fields", None)
    if isinstance(model_fields, dict):
        return {name: _field_default(info) for name, info in model_fields.items()}
    if dataclasses.is_dataclass(target):
        return {f.name: _field_default(f) for f in dataclasses.fields(target) if f.init}
    empty = inspect.Parameter.empty
    return {
        p.name: REQUIRED if p.default is empty else p.default for p in inspect.signature(target).parameters.values()
    }


def _same_default(recorded: Any, installed: Any) -> bool:
    """Whether an installed default matches the recorded one; True where either is not a plain value."""
    if installed is REQUIRED or recorded == REQUIRED:
        return installed == recorded
    if isinstance(installed, enum.Enum):
        return recorded in (installed.name, installed.value)
    described = isinstance(recorded, str) and recorded.startswith("<")  # "<KvCacheConfig()>"
    if installed is _UNCOMPARABLE or described or not isinstance(recorded, _PLAIN) or not isinstance(installed, _PLAIN):
        return True
    return installed == recorded and isinstance(installed, bool) == isinstance(recorded, bool)


def _import(module: str, name: str) -> Any:
    """`module.name`, or a one-line reason it cannot be imported (an ImportError/AttributeError message)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as ex:
        return f"{module}.{name} cannot be imported ({type(ex).__name__}: {ex})"


def _keywords(name: str, names: frozenset[str], defaults: dict[str, Any], spec: dict[str, Any]) -> Iterator[str]:
    """Differences between an object's recorded keywords and the installed `names` and `defaults`."""
    recorded = spec.get("kwargs") or spec["fields"]
    for keyword in sorted(set(recorded) - names):
        yield f"{name}.{keyword}: recorded in the contract, not accepted by the installed {name}"
    for keyword in sorted(names - set(recorded)):
        yield f"{name}.{keyword}: accepted by the installed {name}, not recorded in the contract"
    for keyword in sorted(set(spec.get("absent") or ()) & names):
        yield f"{name}.{keyword}: recorded as absent, present in the installed {name}"
    for keyword in sorted(set(recorded) & set(defaults)):
        wanted, found = recorded[keyword].get("default"), defaults[keyword]
        if "default" in recorded[keyword] and not _same_default(wanted, found):
            yield f"{name}.{keyword}: default {found!r} installed, {wanted!r} recorded"


def _methods(llm: Any, methods: dict[str, str]) -> Iterator[str]:
    for method, text in methods.items():
        if not hasattr(llm, method):
            yield f"LLM.{method}: recorded in the contract, not on the installed LLM"
        elif text.startswith(f"{method}("):
            recorded = recorded_parameters(text)
            parameters = inspect.signature(getattr(llm, method)).parameters.values()
            installed = [p.name for p in parameters if p.kind in _NAMED and p.name != "self"]
            if installed != recorded:
                yield f"LLM.{method}: parameters {installed} installed, {recorded} recorded"


def _enums(contract: dict[str, Any], api: dict[str, Any]) -> Iterator[str]:
    for name, members in contract["enums"].items():
        if not isinstance(members, list) or name not in api:  # notes; enums lem does not import are not checked
            continue
        installed = {member.name for member in api[name]}
        for member in sorted(set(members) - installed):
            yield f"{name}.{member}: recorded in the contract, not a member of the installed enum"
        for member in sorted(installed - set(members)):
            yield f"{name}.{member}: a member of the installed enum, not recorded in the contract"


def _assigned_in_source(cls: type, field: str) -> bool:
    """Whether any class in `cls`'s MRO assigns `self.<field>` in its source (attributes set while running)."""
    pattern = re.compile(rf"\bself\.{re.escape(field)}\s*(:[^=]*)?=")
    for klass in cls.__mro__:
        try:
            if pattern.search(inspect.getsource(klass)):
                return True
        except (OSError, TypeError):  # a C extension or a class built at run time: no source
            continue
    return False


def _outputs(outputs: dict[str, Any]) -> Iterator[str]:
    for name, module in outputs["modules"].items():
        cls = _import(module, name)
        if isinstance(cls, str):
            yield f"{name}: {cls}"
            continue
        for field in outputs[name]:
            if not (hasattr(cls, field) or field in getattr(cls, "__annotations__", {})) and not _assigned_in_source(
                cls, field
            ):
                yield f"{name}.{field}: recorded in the contract, not found on the installed {name}"


def _reading(name: str, cls: Any, llm_args: Any) -> tuple[frozenset[str], dict[str, Any]]:
    """The installed keywords of object `name` and their defaults (LLM: its parameters and LLM_ARGS' fields)."""
    if name != "LLM":
        return accepted_keywords(cls), installed_defaults(cls)
    return llm_keywords(cls), {**installed_defaults(llm_args), **installed_defaults(cls)}


def differences(contract: dict[str, Any]) -> list[str]:
    """Every difference between `contract` and the installed tensorrt_llm (which must be importable)."""
    found: list[str] = []
    api: dict[str, Any] = {}
    for name, module in contract["imports"]["names"].items():
        imported = _import(module, name)
        if isinstance(imported, str):
            found.append(f"import {name}: {imported}")
        else:
            api[name] = imported
    llm_args = _import(*LLM_ARGS)
    if isinstance(llm_args, str):
        found.append(f"LLM keywords: {llm_args}")
        api.pop("LLM", None)  # its keywords cannot be read without LLM_ARGS
    for name, spec in contract["objects"].items():
        if name in api and ("kwargs" in spec or "fields" in spec):
            found += _keywords(name, *_reading(name, api[name], llm_args), spec)
    if "LLM" in api:
        found += _methods(api["LLM"], contract["objects"]["LLM"]["methods"])
    found += _enums(contract, api)
    found += _outputs(contract["outputs"])
    return found


def _serve_option(name: str, spec: dict[str, Any], param: Any) -> Iterator[str]:
    """Differences between one recorded serve option and the installed click option."""
    if sorted(param.opts) != sorted(spec["opts"]):
        yield f"serve {name}: flags {sorted(param.opts)} installed, {sorted(spec['opts'])} recorded"
    if bool(param.is_flag) != (spec["type"] == "flag"):
        kind = "a switch" if param.is_flag else "takes a value"
        yield f"serve {name}: {kind} installed, type {spec['type']} recorded"
    choices = getattr(param.type, "choices", None)
    if "choices" in spec and sorted(choices or ()) != sorted(spec["choices"]):
        yield f"serve {name}: choices {sorted(choices or ())} installed, {sorted(spec['choices'])} recorded"
    if not spec.get("multiple") and not _same_default(spec["default"], param.default):
        yield f"serve {name}: default {param.default!r} installed, {spec['default']!r} recorded"


def _serve_command(entry: dict[str, Any]) -> Any:
    """The installed serve command (click), or a one-line reason it cannot be found."""
    group = _import(entry["module"], entry["group"])
    if isinstance(group, str):
        return group
    command = getattr(group, "commands", {}).get(entry["command"])
    return command or f"{entry['module']}.{entry['group']} has no command {entry['command']!r}"


def _request_model(name: str, spec: dict[str, Any], complete: bool) -> Iterator[str]:
    """Differences between a recorded request model (pydantic) and the installed one; `complete`: every installed
    field must be recorded too."""
    cls = _import(spec["module"], spec["class"])
    if isinstance(cls, str):
        yield f"{name}: {cls}"
        return
    names, defaults = accepted_keywords(cls), installed_defaults(cls)
    recorded = spec.get("fields_lem_sends") or spec["fields"]
    for field in sorted(set(recorded) - names):
        yield f"{name}.{field}: recorded in the contract, not a field of the installed {name}"
    if complete:
        for field in sorted(names - set(recorded)):
            yield f"{name}.{field}: a field of the installed {name}, not recorded in the contract"
    for field in sorted(set(spec.get("required", ())) & names):
        if defaults[field] != REQUIRED:
            yield f"{name}.{field}: recorded as required, optional in the installed {name}"
    for field in sorted(set(recorded) & set(defaults)):
        wanted = recorded[field].get("default", REQUIRED if field in spec.get("required", ()) else None)
        if "default" in recorded[field] and not _same_default(wanted, defaults[field]):
            yield f"{name}.{field}: default {defaults[field]!r} installed, {wanted!r} recorded"
    extra = (getattr(cls, "model_config", None) or {}).get("extra")
    if "extra" in spec and extra != spec["extra"]:
        yield f"{name}: extra={extra!r} installed (unknown request fields), {spec['extra']!r} recorded"


def serve_differences(contract: dict[str, Any]) -> list[str]:
    """Every difference between trtllm-serve's contract and the installed tensorrt_llm (which must be importable)."""
    command = _serve_command(contract["entry"])
    if isinstance(command, str):
        return [f"trtllm-serve: {command}"]
    found: list[str] = []
    params = {p.name: p for p in command.params}
    options = {name: p for name, p in params.items() if p.param_type_name == "option"}
    arguments = {name for name, p in params.items() if p.param_type_name == "argument"}
    recorded_arguments = set(contract["entry"]["arguments"])
    for name in sorted(recorded_arguments - arguments):
        found.append(f"serve argument {name}: recorded in the contract, not taken by the installed serve command")
    for name in sorted(arguments - recorded_arguments):
        found.append(f"serve argument {name}: taken by the installed serve command, not recorded in the contract")
    recorded = contract["options"]
    for name in sorted(set(recorded) - set(options)):
        found.append(f"serve {name}: recorded in the contract, not an option of the installed serve command")
    for name in sorted(set(options) - set(recorded)):
        found.append(f"serve {name}: an option of the installed serve command, not recorded in the contract")
    for name in sorted(set(recorded) & set(options)):
        found += _serve_option(name, recorded[name], options[name])
    found += _request_model("CompletionRequest", contract["completion_request"], complete=False)
    found += _request_model("StreamOptions", contract["stream_options"], complete=True)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contract", type=Path, help="the contract JSON (default: lem's, for what is checked)")
    parser.add_argument("--serve", action="store_true", help="check trtllm-serve's contract instead of the LLM API's")
    args = parser.parse_args(argv)
    contract_path = args.contract or (SERVE_CONTRACT if args.serve else CONTRACT)
    contract = json.loads(contract_path.read_text())
    try:
        import tensorrt_llm
    except Exception as ex:  # not installed, or a broken install (CUDA, TensorRT and MPI libraries load on import)
        print(f"tensorrt_llm cannot be imported here ({type(ex).__name__}: {ex}); nothing to compare", file=sys.stderr)
        return 2
    version = getattr(tensorrt_llm, "__version__", "unknown")
    recorded = contract["source"]["tag"].lstrip("v")
    print(f"installed tensorrt_llm {version}; contract {contract_path.name} records {recorded}")
    found = serve_differences(contract) if args.serve else differences(contract)
    for line in found:
        print(line)
    print(f"{len(found)} difference(s)" if found else "no differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
