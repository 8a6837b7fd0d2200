"""Prompt sources: the built-in set, synthetic prompts, local files and Hugging Face datasets.

`load_prompts` is the only entry point. Its invariants:

* the result has exactly `num_prompts` strings, and the same arguments give the same list in the same order
  (all randomness comes from `random.Random(seed)`);
* every prompt encodes (without special tokens) to at most `max_input_tokens` tokens of the given tokenizer, and a
  `synthetic` prompt to exactly `max_input_tokens`;
* every failure is a `PromptError` whose message is one line naming the source, the config key and the fix.

This module selects and truncates; the rows come from `files` (local files and the built-in set), `hub` (Hugging
Face datasets) and `synthetic`. Importing lem.prompts is cheap: it needs only the standard library (`datasets` is
imported when a source needs it).
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path

from lem.prompts.base import BUILTIN, SYNTHETIC, Tokenizer, prompt_error
from lem.prompts.files import FILE_SUFFIXES, read_file, rows_from_jsonl
from lem.prompts.hub import read_hf
from lem.prompts.synthetic import synthetic_prompts

#: The built-in prompt set (package data; see data/README.md).
BUILTIN_FILE = "data/builtin_prompts.jsonl"


def load_prompts(
    *,
    name: str,
    sample_size: int | None,
    split: str,
    column: str | None,
    num_prompts: int,
    seed: int,
    max_input_tokens: int,
    tokenizer: Tokenizer,
) -> list[str]:
    """Return `num_prompts` prompts from source `name`, each at most `max_input_tokens` tokens long.

    `name` is "builtin", "synthetic", a local .jsonl/.json/.txt/.csv path, or a Hugging Face datasets name
    (loaded with `datasets.load_dataset(name, split=split)`, which honours HF_DATASETS_OFFLINE / HF_HUB_OFFLINE).
    `column` picks the text column of jsonl/json/csv/HF rows (None: "text", else "prompt"); `split` applies only
    to Hugging Face datasets; `synthetic` ignores `sample_size`, `split` and `column`.
    Selection: see `select_rows`. Truncation: see `truncate`.
    """
    if num_prompts <= 0:
        raise prompt_error("num_input_prompts", num_prompts, "must be at least 1", "set num_input_prompts to 1 or more")
    if max_input_tokens <= 0:
        raise prompt_error(
            "max_input_tokens", max_input_tokens, "must be at least 1", "set max_input_tokens to 1 or more"
        )
    if sample_size is not None and sample_size <= 0:
        raise prompt_error(
            "dataset.sample_size",
            sample_size,
            "must be at least 1 or null",
            "set dataset.sample_size to 1 or more, or null for all rows",
        )
    if name == SYNTHETIC:
        return synthetic_prompts(num_prompts=num_prompts, num_tokens=max_input_tokens, seed=seed, tokenizer=tokenizer)
    rows = read_rows(name, split=split, column=column)
    if not rows:
        raise prompt_error(
            "dataset.name",
            name,
            "no prompts found (every row is empty)",
            "add non-empty prompts to the source or choose another dataset.name",
        )
    selected = select_rows(rows, sample_size=sample_size, num_prompts=num_prompts, seed=seed)
    return [truncate(text, max_input_tokens, tokenizer) for text in selected]


def select_rows(rows: list[str], *, sample_size: int | None, num_prompts: int, seed: int) -> list[str]:
    """Seeded selection of `num_prompts` rows from a non-empty `rows`.

    The rows are shuffled with `random.Random(seed)`; the pool is the first `sample_size` of them (all of them when
    `sample_size` is None or exceeds the row count). The result takes the pool in order and, when `num_prompts`
    exceeds the pool, cycles through it again in the same order rather than failing. So the result for `n` prompts
    is a prefix of the result for `n + 1`, and a row repeats only once every pool row has been used.
    """
    shuffled = random.Random(seed).sample(rows, len(rows))
    pool = shuffled if sample_size is None else shuffled[:sample_size]
    return [pool[i % len(pool)] for i in range(num_prompts)]


def truncate(text: str, max_tokens: int, tokenizer: Tokenizer) -> str:
    """`text` unchanged if within `max_tokens` tokens, else the decoded longest token prefix that is ("" if none).

    Decoding a token prefix can re-encode to more tokens (a split multi-byte character, a merge across the cut), so
    the prefix is shortened until the decoded text re-encodes within `max_tokens`.
    """
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) <= max_tokens:
        return text
    for keep in range(max_tokens, 0, -1):
        out = tokenizer.decode(ids[:keep])
        if len(tokenizer.encode(out, add_special_tokens=False)) <= max_tokens:
            return out
    return ""


def read_rows(name: str, *, split: str, column: str | None) -> list[str]:
    """Every non-empty prompt text (stripped) of source `name`, in source order; `name` must not be "synthetic"."""
    if name == BUILTIN:
        data = resources.files("lem.prompts").joinpath(BUILTIN_FILE).read_text(encoding="utf-8")
        return rows_from_jsonl(data, column=column, source=name)
    path = Path(name).expanduser()
    if path.is_file():
        return read_file(path, name=name, column=column)
    if path.suffix.lower() in FILE_SUFFIXES or path.is_dir():
        raise prompt_error(
            "dataset.name",
            name,
            "no such file",
            "check the path (relative paths are from the working directory), or use dataset.name=builtin",
        )
    return read_hf(name, split=split, column=column)
