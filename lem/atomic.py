"""Atomic writes: files (temporary file, fsync, rename) and folders (staging folder, marker, rename under a lock)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Have `write(tmp)` write a sibling temporary file, then rename it over `path`.

    A crash at any point leaves the old file or none, never a partial one. The file gets the permissions a
    plain open() would give it (0666 less the umask), not mkstemp's private 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (see `replace_atomically`)."""
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, data: Any) -> None:
    """`write_text_atomic` of `data` as indented JSON."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def install_folder(final: Path, build: Callable[[Path], None], *, marker: str, force: bool = False) -> bool:
    """Make `final` a complete folder: one holding `marker`, which `build(staging)` must write last.

    Under an exclusive lock beside `final` (the kernel releases it if the process dies): a complete `final` is
    kept unless `force`; otherwise staging folders left by crashed builds are removed, `build` fills a fresh
    staging sibling, and that is renamed over `final`. A crash at any point leaves the old `final` or none,
    never a partial one; concurrent callers wait for the lock instead of building twice.
    Returns True if this call built the folder.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(f".{final.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and (final / marker).is_file():
            return False
        for stale in final.parent.glob(f".{final.name}.staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
        try:
            build(staging)
            if not (staging / marker).is_file():
                raise RuntimeError(f"building {final} wrote no {marker}")
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already when the rename succeeded
    return True
