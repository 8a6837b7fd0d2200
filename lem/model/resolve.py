"""Turns the config's `model` into the local folder every backend loads from, or a one-line error.

A Hub id that is not in the Hugging Face cache is downloaded here, in the prepare phase, before the idle baseline
and every metered window (lem.model.hub); HF_HUB_OFFLINE=1 forbids that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lem.config.schema import TINY_MODEL_ID
from lem.errors import LemError

DEFAULT_REVISION = "main"


@dataclass(frozen=True)
class ModelSource:
    """Where the run's model came from (results.json `environment.model`).

    `source` is "builtin" (lem's tiny model), "folder" (a local path) or "hub"; `path` the folder the backends load;
    `revision` the Hub commit hash of that folder (None for the other sources); `downloaded` whether this run
    fetched it from the Hub.
    """

    id: str
    source: str
    path: str
    revision: str | None = None
    downloaded: bool = False


def cache_root(configured: str | None) -> Path:
    """lem's cache folder: the config's cache_dir, else $LEM_CACHE_DIR, else ~/.cache/lem."""
    return Path(configured or os.environ.get("LEM_CACHE_DIR") or Path.home() / ".cache" / "lem").expanduser()


def resolve_model(model: str, cache_dir: Path, revision: str | None = None) -> str:
    """The folder `model` loads from (see `locate_model`)."""
    return locate_model(model, cache_dir, revision).path


def locate_model(model: str, cache_dir: Path, revision: str | None = None) -> ModelSource:
    """A local folder, or a Hugging Face id at `revision` (branch, tag or commit; None = "main") from the Hub cache,
    downloaded there first when it is not cached; the built-in tiny model is built on first use."""
    if model == TINY_MODEL_ID:
        from lem.model.tiny import ensure_tiny_model

        return ModelSource(model, "builtin", str(ensure_tiny_model(cache_dir)))
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LemError(
                f"model={model!r}: the folder has no config.json; point model at a Hugging Face model "
                f"folder (save_pretrained output)",
                phase="prepare",
            )
        return ModelSource(model, "folder", str(path.resolve()))
    _refuse_non_hub_id(model)
    return _hub_model(model, revision or DEFAULT_REVISION)


def _refuse_non_hub_id(model: str) -> None:
    """A `model` that is neither an existing folder nor a valid Hub id (`name` or `owner/name`) stops here."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if model.startswith(("/", "./", "../", "~")) or model.count("/") > 1:
        raise LemError(
            f"model={model!r}: no such model folder; give an existing folder or a Hugging Face id (owner/name)",
            phase="prepare",
        )
    try:
        validate_repo_id(model)
    except HFValidationError as ex:
        raise LemError(
            f"model={model!r}: not an existing folder and not a valid Hugging Face id ({ex}); give an existing "
            f"folder or an id such as owner/name",
            phase="prepare",
        ) from ex


def _hub_model(repo_id: str, revision: str) -> ModelSource:
    """The cached snapshot of `repo_id` at `revision`, downloaded first where the cache has no complete one."""
    from huggingface_hub import constants

    from lem.model import hub

    folder = hub.cached_snapshot(repo_id, revision)
    downloaded = folder is None
    if folder is None:
        if constants.HF_HUB_OFFLINE:
            command = f"hf download {repo_id}" + (f" --revision {revision}" if revision != DEFAULT_REVISION else "")
            raise LemError(
                f"model={repo_id!r}: not in the local Hugging Face cache (revision {revision!r}), and HF_HUB_OFFLINE=1 "
                f"forbids downloading; unset HF_HUB_OFFLINE, or download it first (`{command}`), or give a local "
                f"folder",
                phase="prepare",
            )
        folder = hub.download(repo_id, revision)
    return ModelSource(repo_id, "hub", str(folder), revision=folder.name, downloaded=downloaded)
