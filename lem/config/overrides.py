"""Command-line overrides as users type them, rewritten for Hydra before it parses them.

A dry run of a sweep meant for SLURM (`-m ... dry_run=true` with a submitit SLURM launcher) submits nothing: lem
swaps the launcher for Hydra's basic one, so that every job's dry run runs here, on the login node, and validation
judges the hardware rules against what the SLURM launcher requests per job (`lem.config.machine.JobTarget`).

An escape hatch (a backend field typed dict[str, Any], see `lem.backends.escape_hatches`) starts empty, so Hydra
rejects `backend.extra.enable_foo=true` ("use +backend.extra.enable_foo=true"): a plain override must name a key
that exists. lem rewrites a plain override whose key runs through an escape hatch into `++key=value`, which adds the
key or overrides it (a preset may have set it), sweeps included (`-m backend.extra.x=1,2`). Which keys the engine
accepts is validation's business (`lem.config.rules`), as is a hatch that the selected backend does not have.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from lem.backends.escape_hatches import escape_hatch_fields
from lem.backends.registry import BACKENDS
from lem.config.machine import JobTarget, slurm_target
from lem.config.store import CONFIG_DIR

#: Hydra's flag for a sweep; only a sweep goes through a launcher.
_MULTIRUN = ("-m", "--multirun")
#: A command-line argument that selects or sets the launcher: `hydra/launcher=...`, `[+~]hydra.launcher.<field>...`.
_LAUNCHER_ARGUMENT = re.compile(r"^[+~]*hydra(?:/launcher=|\.launcher(?:[.=]|$))")


@cache
def _through_a_hatch() -> re.Pattern[str]:
    hatches = sorted({hatch for spec in BACKENDS.values() for hatch in escape_hatch_fields(spec.config)})
    return re.compile(rf"backend\.(?:{'|'.join(hatches)})\.[^=]+=")


def as_typed(overrides: list[str]) -> list[str]:
    """`overrides` (command-line arguments) with every plain `backend.<hatch>.<key>=value` made `++...`."""
    return [f"++{arg}" if _through_a_hatch().match(arg) else arg for arg in overrides]


def _first_point(overrides: list[str]) -> list[str]:
    """`overrides` with every choice or range sweep at its first value (other sweeps left out): one job's overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    point = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            point.append(override.input_line)
        elif override.is_discrete_sweep():
            point.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
    return point


def _composed(overrides: list[str]) -> Any:
    """The primary config with `overrides` and Hydra's own node (`hydra.launcher`, `hydra.runtime.choices`)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=_first_point(overrides), return_hydra_config=True)


def dry_run_here(arguments: list[str]) -> tuple[list[str], JobTarget | None]:
    """For a dry run of a sweep meant for SLURM: `arguments` with the launcher replaced by Hydra's basic one, and the
    job target the SLURM launcher describes; otherwise `arguments` unchanged and None.

    The config is composed once here (each sweep at its first value) to read `dry_run` and `hydra.launcher`, for a
    sweep (-m) without other Hydra flags (--cfg, --help, ... launch nothing). Where it does not compose, Hydra's own
    run reports why.
    """
    flags = [a for a in arguments if a.startswith("-")]
    if not flags or any(flag not in _MULTIRUN for flag in flags):
        return arguments, None
    try:
        cfg = _composed([a for a in arguments if a not in _MULTIRUN])
    except Exception:  # any composition error: Hydra reports it in the run itself
        return arguments, None
    if not cfg.dry_run:
        return arguments, None
    from omegaconf import OmegaConf

    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert isinstance(launcher, dict)
    target = slurm_target(launcher, str(cfg.hydra.runtime.choices.get("hydra/launcher")))
    if target is None:
        return arguments, None
    return [a for a in arguments if not _LAUNCHER_ARGUMENT.match(a)] + ["hydra/launcher=basic"], target
