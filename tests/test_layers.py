"""Which layer may import which (docs/architecture.md), checked on every import statement of lem's sources."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

#: Config-time files under lem/backends: declarations, and the pure translation a spec declares (a dry run computes
#: its engine key without the engine), imported during validation.
_BACKEND_DECLARATIONS = ("registry.py", "spec.py", "__init__.py", "config.py", "rules.py", "translate.py")
#: module prefix → the lem modules (prefixes) it must never import.
_FORBIDDEN = {
    "lem.config": ("lem.harness", "lem.energy", "lem.measure", "lem.metrics", "lem.report", "lem.model", "lem.app"),
    "lem.backends": ("lem.energy", "lem.metrics", "lem.measure", "lem.assemble", "lem.harness", "lem.report"),
    "lem.energy": ("lem.backends", "lem.model", "lem.prompts", "lem.harness", "lem.report", "lem.metrics"),
    "lem.results": ("lem.backends", "lem.energy", "lem.config", "lem.harness", "lem.report", "lem.metrics"),
    "lem.report": ("lem.backends", "lem.energy", "lem.config", "lem.harness", "lem.metrics", "lem.model"),
}
#: What backend declarations (read at validation time, before anything heavy loads) may import from lem.
_DECLARATIONS_MAY_IMPORT = ("lem.config", "lem.errors", "lem.backends")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (REPO / "lem").rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return modules


def _imports(path: Path) -> set[str]:
    """Every module an import statement in `path` names (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _is_declaration(module: str) -> bool:
    return module.startswith("lem.backends.") and _modules()[module].name in _BACKEND_DECLARATIONS


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_respects_its_layer(module: str) -> None:
    imported = _imports(_modules()[module])
    assert not {m for m in imported if _under(m, ("hydra_plugins",))}, "lem never imports hydra_plugins"
    for layer, forbidden in _FORBIDDEN.items():
        if _under(module, (layer,)):
            bad = sorted(m for m in imported if _under(m, forbidden))
            assert not bad, f"{module} ({layer}) must not import {bad}"
    if _is_declaration(module):
        own = sorted(m for m in imported if m.startswith("lem") and not _under(m, _DECLARATIONS_MAY_IMPORT))
        assert not own, f"{module} is read at validation time and must not import {own}"
        heavy = {"lem.backends.base"} | {m for m in imported if m.endswith(".backend")}
        assert not heavy & imported, f"{module} must not import backend implementations {sorted(heavy & imported)}"


def test_every_backend_folder_declares_a_spec() -> None:
    from lem.backends.registry import BACKENDS

    folders = sorted(p.name for p in (REPO / "lem" / "backends").iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(BACKENDS), "each backend folder is registered once, in lem/backends/registry.py"
    for name, spec in BACKENDS.items():
        assert spec.name == name and spec.implementation.startswith(f"lem.backends.{name}.")
