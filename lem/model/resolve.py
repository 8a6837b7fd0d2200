"""Turns the config's `model` into something from_pretrained can load offline, or a one-line error."""

from __future__ import annotations

import os
from pathlib import Path

from lem.config.schema import TINY_MODEL_ID
from lem.errors import LemError


def cache_root(configured: str | None) -> Path:
    """lem's cache folder: the config's cache_dir, else $LEM_CACHE_DIR, else ~/.cache/lem."""
    return Path(configured or os.environ.get("LEM_CACHE_DIR") or Path.home() / ".cache" / "lem").expanduser()


def resolve_model(model: str, cache_dir: Path) -> str:
    """A local folder or a cached Hugging Face id; the built-in tiny model is built on first use."""
    if model == TINY_MODEL_ID:
        from lem.model.tiny import ensure_tiny_model

        return str(ensure_tiny_model(cache_dir))
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LemError(
                f"model={model!r}: the folder has no config.json; point model at a Hugging Face model "
                f"folder (save_pretrained output)",
                phase="prepare",
            )
        return str(path.resolve())
    if model.startswith(("/", "./", "../", "~")) or path.suffix or model.count("/") > 1:
        raise LemError(
            f"model={model!r}: no such model folder; give an existing folder or a Hugging Face id that is "
            f"in the local cache",
            phase="prepare",
        )
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return model
    raise LemError(
        f"model={model!r}: not a local folder and not in the Hugging Face cache (lem does not download "
        f"at run time); download it first (huggingface-cli download {model}) or give a local path",
        phase="prepare",
    )
