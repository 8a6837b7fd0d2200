"""Hugging Face Hub models: a revision's complete snapshot in the Hub cache, or its download (prepare phase only).

Only what a backend loads is fetched: the repository's top-level config, tokenizer and custom-code files and the
weights of one format (safetensors where the repository has them, else PyTorch `pytorch_model*.bin`). Subfolders
(`original/`, `onnx/`, ...), other formats (GGUF, ONNX, Flax, TF) and `consolidated.*` duplicates are left out.
huggingface_hub writes each file as an `.incomplete` blob and links it into the snapshot once complete, and (from
version 2) stores the revision's file list before the first file: a snapshot left half-done by a failed or interrupted
download lacks a listed file or a weight shard, and does not count as cached.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from multiprocessing.connection import Connection
from pathlib import Path

from lem.errors import LemError

log = logging.getLogger(__name__)

#: Weight files in order of preference: the first pattern with a match at the top level is downloaded.
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
#: Non-weight files a backend may read: config and generation config, tokenizers, chat templates, custom code.
SUPPORT_SUFFIXES = (".json", ".model", ".tiktoken", ".txt", ".jinja", ".py")
_LOGIN = "set HF_TOKEN or run `hf auth login`"


def files_to_fetch(repo_files: list[str]) -> list[str]:
    """The files of `repo_files` (paths in the repository) that a backend loads: top-level support files, and the
    weights of the first format in WEIGHT_PATTERNS that the repository has (other formats' index files left out)."""
    top = [f for f in repo_files if "/" not in f and not f.startswith("consolidated.")]
    chosen = next((p for p in WEIGHT_PATTERNS if any(fnmatch(f, p) for f in top)), None)
    other_indexes = [f"{p}.index.json" for p in WEIGHT_PATTERNS if p != chosen]
    support = [f for f in top if f.endswith(SUPPORT_SUFFIXES) and not any(fnmatch(f, i) for i in other_indexes)]
    weights = [f for f in top if chosen is not None and fnmatch(f, chosen)]
    return sorted(set(support + weights))


def cached_snapshot(repo_id: str, revision: str) -> Path | None:
    """The snapshot folder of `repo_id` at `revision` (branch, tag or commit) in the Hub cache, without touching the
    network; None where there is none or where it is incomplete: a file of its stored file list (`files_to_fetch`)
    missing, no weights, or a shard its weight index names missing. A snapshot fetched by another tool counts."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    listed = _stored_file_list(repo_id, revision)
    expected = files_to_fetch(listed) if listed is not None else []
    complete = all((folder / name).is_file() for name in expected) and _weights_complete(folder)
    return folder if complete else None


def _stored_file_list(repo_id: str, revision: str) -> list[str] | None:
    """The revision's file list that huggingface_hub (2.0 and later) stores before downloading; None without one."""
    try:
        from huggingface_hub import get_cached_repo_tree
        from huggingface_hub.errors import CachedRepoTreeNotFoundError
    except ImportError:  # huggingface_hub before 2.0 (TensorRT-LLM's transformers 4.57) stores none
        return None
    try:
        return [entry.path for entry in get_cached_repo_tree(repo_id, revision=revision)]
    except CachedRepoTreeNotFoundError:
        return None


def _weights_complete(folder: Path) -> bool:
    """Whether `folder` holds weights of a WEIGHT_PATTERNS format, and every shard its weight index names."""
    names = [p.name for p in folder.iterdir()]
    if not any(fnmatch(name, pattern) for name in names for pattern in WEIGHT_PATTERNS):
        return False
    for name in names:
        if any(fnmatch(name, f"{pattern}.index.json") for pattern in WEIGHT_PATTERNS):
            shards = set(json.loads((folder / name).read_text(encoding="utf-8")).get("weight_map", {}).values())
            if not all((folder / shard).is_file() for shard in shards):
                return False
    return True


def download(repo_id: str, revision: str) -> Path:
    """Download `repo_id` at `revision` into the Hub cache with a progress bar on the console (stderr), and return
    its snapshot folder (named by the commit hash); a one-line LemError naming the model, the reason and the fix
    when the Hub cannot serve it."""
    from huggingface_hub import HfApi

    api = HfApi()
    with _one_line_errors(repo_id, revision, api.endpoint):
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    sizes = {sibling.rfilename: sibling.size or 0 for sibling in info.siblings or []}
    files = files_to_fetch(list(sizes))
    _refuse_unloadable(repo_id, revision, files)
    size_b = sum(sizes[f] for f in files)
    size = f"{size_b / 1e9:.1f} GB" if size_b >= 1e9 else f"{size_b / 1e6:.1f} MB"
    announce = f"downloading {repo_id}@{revision} (commit {info.sha}): {len(files)} files, {size}"
    log.info("%s: %s", announce, ", ".join(files))
    print(f"lem: {announce}", file=sys.stderr, flush=True)
    return _fetch_in_child(repo_id, revision, files, api.endpoint)


def _fetch_in_child(repo_id: str, revision: str, files: list[str], endpoint: str) -> Path:
    """`_fetch` in a child process, so that an interrupt of lem (SIGINT, SIGTERM: lem.interrupts) ends the download
    at once: in lem's own process, huggingface_hub's download threads would first finish the files they had begun
    (minutes for a large shard). What the child fetched stays in the cache; a half-done snapshot does not count."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_fetch, args=(repo_id, revision, files, endpoint, sender), name="lem-download")
    child.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:  # the child died without an answer
        outcome = None
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
    if outcome is None:
        raise LemError(
            f"model={repo_id!r}: the download process ended with exit code {child.exitcode} before it finished; "
            f"run again, or download it first (`hf download {repo_id}`)",
            phase="prepare",
        )
    kind, value = outcome
    if kind == "error":
        raise LemError(value, phase="prepare")
    return Path(value)


def _fetch(repo_id: str, revision: str, files: list[str], endpoint: str, sender: Connection) -> None:
    """The download child: fetch `files` of `repo_id` at `revision` with a progress bar on stderr, and send back
    ("ok", snapshot folder) or ("error", one line naming the model, the reason and the fix)."""
    from huggingface_hub import snapshot_download
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock, which a terminated child would leak
    try:
        # tqdm itself, not huggingface_hub's subclass, which HF_HUB_DISABLE_PROGRESS_BARS (set by lem.logs) silences.
        sender.send(("ok", snapshot_download(repo_id, revision=revision, allow_patterns=files, tqdm_class=tqdm)))
    except Exception as ex:  # the Hub's and the network's exceptions, whose types differ across versions
        sender.send(("error", _download_error(repo_id, revision, endpoint, ex)))


def _refuse_unloadable(repo_id: str, revision: str, files: list[str]) -> None:
    """A repository without config.json or top-level weights cannot be loaded by a backend: say so before fetching."""
    where = f"model={repo_id!r} (revision {revision!r})"
    if "config.json" not in files:
        raise LemError(
            f"{where}: the repository has no top-level config.json, so it is not a transformers checkpoint; "
            f"choose a repository with one (GGUF/ONNX-only repositories cannot be loaded) or give a local folder",
            phase="prepare",
        )
    if not any(fnmatch(f, p) for f in files for p in WEIGHT_PATTERNS):
        raise LemError(
            f"{where}: the repository has no top-level weights ({' or '.join(WEIGHT_PATTERNS)}); choose a repository "
            f"with transformers weights or give a local folder",
            phase="prepare",
        )


@contextmanager
def _one_line_errors(repo_id: str, revision: str, endpoint: str) -> Iterator[None]:
    """The Hub's and the network's exceptions (their types differ across huggingface_hub versions) as a LemError."""
    try:
        yield
    except Exception as ex:
        raise LemError(_download_error(repo_id, revision, endpoint, ex), phase="prepare") from ex


def _download_error(repo_id: str, revision: str, endpoint: str, ex: Exception) -> str:
    """One line: the model, why the Hub did not serve it, and what to do."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    where = f"model={repo_id!r}"
    # hf_hub_download reports a file the Hub refused as "not found in the local cache": the Hub's answer is the cause.
    ex = next((e for e in _causes(ex) if isinstance(e, HfHubHTTPError)), ex)
    if isinstance(ex, GatedRepoError):
        return (
            f"{where}: the repository is gated; accept its conditions on {endpoint}/{repo_id} with your account, then "
            f"{_LOGIN}"
        )
    if isinstance(ex, RepositoryNotFoundError):
        return (
            f"{where}: no such repository on {endpoint}, or it is private and no valid token was sent; check the id, "
            f"{_LOGIN} for a private one, or give a local folder"
        )
    if isinstance(ex, RevisionNotFoundError):
        return f"{where}: the repository has no revision {revision!r}; set backend.revision to a branch, tag or commit"
    if isinstance(ex, HfHubHTTPError) and ex.response is not None:
        status = ex.response.status_code
        fix = _LOGIN if status in (401, 403) else "try again later, or download it first (`hf download`)"
        return f"{where}: the Hub at {endpoint} answered HTTP {status} while downloading it; {fix}"
    reason = str(ex).strip().splitlines()[0] if str(ex).strip() else ""
    return (
        f"{where}: could not download it from {endpoint} ({type(ex).__name__}: {reason[:200]}); check the network "
        f"connection and proxy (HF_ENDPOINT, HTTPS_PROXY), or download it first (`hf download {repo_id}`) or give a "
        f"local folder"
    )


def _causes(ex: BaseException) -> list[BaseException]:
    """`ex` and the exceptions it was raised from, outermost first."""
    chain = [ex]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain
