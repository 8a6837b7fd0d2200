"""What lem reads from a model checkpoint without loading it: its folder, its identity, and the dtype it declares."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lem.config.schema import TINY_MODEL_ID
from lem.model.resolve import cache_root
from lem.model.tiny import tiny_model_dir

#: config.json dtype spellings → lem's precision names.
_DTYPE_NAMES = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def find_model_folder(model: str, cache_dir: str | None = None) -> Path | None:
    """The folder holding `model`'s config.json: the path itself, its snapshot in the Hugging Face cache, or lem's
    built-in model in lem's cache (`cache_dir` as the config names it); None where there is none yet (a Hub id not
    downloaded, the built-in model before its first build)."""
    if model == TINY_MODEL_ID:
        model = str(tiny_model_dir(cache_root(cache_dir)))
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return path
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except ValueError:  # not a valid Hub id
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def model_fingerprint(model_path: str) -> dict[str, Any]:
    """The model's identity: its path or id, the SHA-256 of its config.json, and its files' names and sizes (bytes)."""
    folder = find_model_folder(model_path)
    assert folder is not None, f"{model_path} is neither a model folder nor in the Hugging Face cache"
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return {
        "model": model_path,
        "config_json_sha256": hashlib.sha256((folder / "config.json").read_bytes()).hexdigest(),
        "files": {p.name: p.stat().st_size for p in files},
    }


def checkpoint_config(model: str, cache_dir: str | None = None) -> dict[str, Any]:
    """The checkpoint's config.json as a dict; {} where there is none to read (see `find_model_folder`)."""
    folder = find_model_folder(model, cache_dir)
    return json.loads((folder / "config.json").read_text()) if folder is not None else {}


def declared_dtype(model: str) -> str | None:
    """The dtype the checkpoint declares, in lem's names: `dtype` (transformers 5), else `torch_dtype`, also inside a
    multimodal model's `text_config`; None where it declares none lem knows."""
    config = checkpoint_config(model)
    for holder in (config, config.get("text_config") or {}):
        for key in ("dtype", "torch_dtype"):
            value = holder.get(key)
            if isinstance(value, str) and value.removeprefix("torch.") in _DTYPE_NAMES:
                return _DTYPE_NAMES[value.removeprefix("torch.")]
    return None
