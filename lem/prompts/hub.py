"""Prompt rows from a Hugging Face dataset (the `datasets` package is imported only here, and only when needed)."""

from __future__ import annotations

from lem.prompts.base import prompt_error
from lem.prompts.files import FILE_SUFFIXES, resolve_column


def read_hf(name: str, *, split: str, column: str | None) -> list[str]:
    """Rows of Hugging Face dataset `name`, split `split`; any failure is a PromptError."""
    fix = (
        f"give a path to a {'/'.join(FILE_SUFFIXES)} file, or install the `datasets` package and have {name!r} "
        "cached (HF_DATASETS_OFFLINE=1 / HF_HUB_OFFLINE=1 load from the cache only)"
    )
    problem = "is neither an existing file nor a loadable Hugging Face dataset"
    try:
        import datasets
    except ImportError as ex:
        raise prompt_error("dataset.name", name, f"{problem} (the `datasets` package is not installed)", fix) from ex
    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as ex:  # any loader failure (missing, offline, bad split) is the user's to fix
        raise prompt_error("dataset.name", name, f"{problem} (split {split!r}: {type(ex).__name__}: {ex})", fix) from ex
    resolved = resolve_column(column, list(dataset.column_names), name)
    return [text.strip() for text in dataset[resolved] if isinstance(text, str) and text.strip()]
