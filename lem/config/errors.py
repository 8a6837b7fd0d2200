"""Turns Hydra/OmegaConf composition errors into one line naming the key, the value and the fix."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing

from hydra.errors import MissingConfigException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from lem.config.store import GROUP_OPTIONS

#: Longest message quoted from a foreign error (e.g. a SLURM job's whole error log), characters.
_MAX_CHARS = 400
_OVERRIDES = (re.compile(r"use \+(\S+)"), re.compile(r"merging override (\S+)"))


def _known_keys(object_type: object) -> list[str]:
    return [f.name for f in dataclasses.fields(object_type)] if dataclasses.is_dataclass(object_type) else []


def _expected_type(object_type: object, name: str) -> str | None:
    if not dataclasses.is_dataclass(object_type):
        return None
    hint = typing.get_type_hints(object_type).get(name)
    return None if hint is None else getattr(hint, "__name__", str(hint))


def _other_option(key: str) -> str:
    """For `group.name` (a key directly under a config group) where `name` is a key of other options of the group:
    which option to select."""
    group, _, name = key.partition(".")
    if "." in name:
        return ""
    owners = [option for option, node in GROUP_OPTIONS.get(group, {}).items() if name in _known_keys(node)]
    return (
        f"{name} is a key of {' and '.join(f'{group}={o}' for o in owners)}: select {group}={owners[0]} first; "
        if owners
        else ""
    )


def _from_omegaconf(override: str | None, cause: OmegaConfBaseException) -> str:
    key = cause.full_key or (override or "").split("=")[0]
    leaf = key.rsplit(".", 1)[-1]
    given = f" (from '{override}')" if override else ""
    if isinstance(cause, ConfigKeyError | ConfigAttributeError):
        close = difflib.get_close_matches(leaf, _known_keys(cause.object_type), n=1)
        hint = f"did you mean '{key.rsplit('.', 1)[0] + '.' if '.' in key else ''}{close[0]}'? " if close else ""
        hint = _other_option(key) or hint
        return f"{key}: unknown key{given}; {hint}run `python -m lem --cfg job` to list the valid keys"
    first = str(cause).splitlines()[0]
    if isinstance(cause, ValidationError):
        expected = _expected_type(cause.object_type, leaf)
        fix = f"; {key} expects {expected}" if expected else ""
        return f"{key}: {first}{given}{fix}"
    return f"{key}: {first}{given}"


def describe_composition_error(ex: BaseException) -> str:
    """One line for a config composition failure (unknown group option, unknown key, wrong type, bad syntax)."""
    if isinstance(ex, MissingConfigException) and ex.missing_cfg_file and "/" in ex.missing_cfg_file:
        group, _, option = ex.missing_cfg_file.rpartition("/")
        options = ", ".join(sorted(ex.options or []))
        return f"{group}={option}: no such option in group '{group}'; choose one of: {options}"
    cause = ex.__cause__
    override = next((m.group(1) for pattern in _OVERRIDES if (m := pattern.search(str(ex)))), None)
    if isinstance(cause, OmegaConfBaseException):
        return _from_omegaconf(override, cause)
    if isinstance(ex, OmegaConfBaseException):
        return _from_omegaconf(override, ex)
    text = " ".join(str(ex).split())
    if len(text) <= _MAX_CHARS:
        return text or type(ex).__name__
    return text[:_MAX_CHARS] + "... (LEM_DEBUG=1 shows the rest)"
