"""Prompt sources: the built-in set, synthetic prompts, local files and Hugging Face datasets.

`load_prompts` is the only entry point. Its invariants:

* the result has exactly `num_prompts` strings, and the same arguments give the same list in the same order
  (all randomness comes from `random.Random(seed)`);
* every prompt encodes (without special tokens) to at most `max_input_tokens` tokens of the given tokenizer, and a
  `synthetic` prompt to exactly `max_input_tokens`;
* every failure is a `PromptError` whose message is one line naming the source, the config key and the fix.

Importing this module is cheap: it needs only the standard library (`datasets` is imported when a source needs it).
"""

from __future__ import annotations

import csv
import io
import json
import random
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

BUILTIN = "builtin"
SYNTHETIC = "synthetic"
FILE_SUFFIXES = (".jsonl", ".json", ".txt", ".csv")
#: Columns tried, in order, when `column` is None.
DEFAULT_COLUMNS = ("text", "prompt")
#: Plain-word vocabulary entries synthetic prompts are drawn from (at most).
_SYNTHETIC_POOL = 1024
#: Encode/trim/pad rounds allowed before a synthetic prompt is declared impossible for the tokenizer.
_SYNTHETIC_REPAIRS = 32


class PromptError(ValueError):
    """Prompts cannot be loaded; the message is one line: `key=value: problem; fix: ...`."""


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer this module uses."""

    all_special_ids: list[int]

    def __len__(self) -> int: ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: list[int]) -> str: ...


def _error(key: str, value: object, problem: str, fix: str) -> PromptError:
    """A PromptError whose message is `key=value: problem; fix: fix`, folded onto one line."""
    return PromptError(" ".join(f"{key}={value}: {problem}; fix: {fix}".splitlines()))


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
        raise _error("num_input_prompts", num_prompts, "must be at least 1", "set num_input_prompts to 1 or more")
    if max_input_tokens <= 0:
        raise _error("max_input_tokens", max_input_tokens, "must be at least 1", "set max_input_tokens to 1 or more")
    if sample_size is not None and sample_size <= 0:
        raise _error(
            "dataset.sample_size",
            sample_size,
            "must be at least 1 or null",
            "set dataset.sample_size to 1 or more, or null for all rows",
        )
    if name == SYNTHETIC:
        return synthetic_prompts(num_prompts=num_prompts, num_tokens=max_input_tokens, seed=seed, tokenizer=tokenizer)
    rows = read_rows(name, split=split, column=column)
    if not rows:
        raise _error(
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


def synthetic_prompts(*, num_prompts: int, num_tokens: int, seed: int, tokenizer: Tokenizer) -> list[str]:
    """`num_prompts` seeded strings of random plain words from the tokenizer's vocabulary, `num_tokens` tokens each.

    Exactness holds for the given tokenizer only (encoded without special tokens): another tokenizer will count the
    same text differently. Words are ordinary (non-special) vocabulary entries that decode to ASCII letters; the text
    is re-encoded and repaired (trimmed on token ids, padded with a one-token word) until the count is exact.
    """
    rng = random.Random(seed)
    words = _plain_words(tokenizer, rng)
    filler = _filler(tokenizer, words)
    prompts = []
    for _ in range(num_prompts):
        text = " ".join(rng.choice(words) for _ in range(num_tokens))
        prompts.append(_exact_length(text, num_tokens, filler, tokenizer))
    return prompts


def _plain_words(tokenizer: Tokenizer, rng: random.Random) -> list[str]:
    """Up to _SYNTHETIC_POOL distinct vocabulary entries that decode to ASCII letters, in a seeded order."""
    special = set(tokenizer.all_special_ids)
    words: dict[str, None] = {}
    for token_id in rng.sample(range(len(tokenizer)), len(tokenizer)):
        word = tokenizer.decode([token_id]).strip()
        if token_id not in special and word.isascii() and word.isalpha():
            words[word] = None
            if len(words) == _SYNTHETIC_POOL:
                break
    if not words:
        raise _error(
            "dataset.name",
            SYNTHETIC,
            "the tokenizer has no plain-word vocabulary entries to build from",
            "use dataset.name=builtin or a prompt file",
        )
    return list(words)


def _filler(tokenizer: Tokenizer, words: list[str]) -> str:
    """The first word that adds exactly one token when appended after a space (probed by repeating it)."""
    for word in words:
        alone = len(tokenizer.encode(word, add_special_tokens=False))
        if len(tokenizer.encode(f"{word} {word}", add_special_tokens=False)) == alone + 1:
            return word
    raise _error(
        "dataset.name",
        SYNTHETIC,
        "the tokenizer has no single-token word to pad prompts with",
        "use dataset.name=builtin or a prompt file",
    )


def _exact_length(text: str, num_tokens: int, filler: str, tokenizer: Tokenizer) -> str:
    """Trim `text` on token ids and pad it with `filler` until it encodes to exactly `num_tokens` tokens."""
    for _ in range(_SYNTHETIC_REPAIRS):
        count = len(tokenizer.encode(text, add_special_tokens=False))
        if count == num_tokens:
            return text
        if count > num_tokens:
            text = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)[:num_tokens]).strip()
        else:
            text = " ".join([text, *[filler] * (num_tokens - count)]).strip()
    raise _error(
        "dataset.name",
        SYNTHETIC,
        f"could not build a prompt of exactly {num_tokens} tokens with this tokenizer",
        "use dataset.name=builtin or a prompt file",
    )


def read_rows(name: str, *, split: str, column: str | None) -> list[str]:
    """Every non-empty prompt text (stripped) of source `name`, in source order; `name` must not be "synthetic"."""
    if name == BUILTIN:
        data = resources.files("lem.prompts").joinpath("data/builtin_prompts.jsonl").read_text(encoding="utf-8")
        return _rows_from_jsonl(data, column=column, source=name)
    path = Path(name).expanduser()
    if path.is_file():
        return _read_file(path, name=name, column=column)
    if path.suffix.lower() in FILE_SUFFIXES or path.is_dir():
        raise _error(
            "dataset.name",
            name,
            "no such file",
            "check the path (relative paths are from the working directory), or use dataset.name=builtin",
        )
    return _read_hf(name, split=split, column=column)


def _read_file(path: Path, *, name: str, column: str | None) -> list[str]:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise _error(
            "dataset.name",
            name,
            f"unsupported file type {suffix or '(none)'!r}",
            f"give a {'/'.join(FILE_SUFFIXES)} file",
        )
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as ex:
        raise _error(
            "dataset.name", name, f"cannot read the file ({type(ex).__name__}: {ex})", "make it a readable UTF-8 file"
        ) from ex
    if suffix == ".jsonl":
        return _rows_from_jsonl(data, column=column, source=name)
    if suffix == ".json":
        return _rows_from_json(data, column=column, source=name)
    if suffix == ".txt":
        return [line.strip() for line in data.splitlines() if line.strip()]
    return _rows_from_csv(data, column=column, source=name)


def _rows_from_jsonl(data: str, *, column: str | None, source: str) -> list[str]:
    """Rows of a jsonl text: each non-empty line is a JSON string or a JSON object holding the text column."""
    items = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as ex:
            raise _error(
                "dataset.name",
                source,
                f"line {number} is not valid JSON ({ex.msg})",
                "write one JSON object or string per line",
            ) from ex
    return _rows_from_items(items, column=column, source=source)


def _rows_from_json(data: str, *, column: str | None, source: str) -> list[str]:
    """Rows of a JSON document: a list of strings or of objects holding the text column."""
    try:
        document = json.loads(data) if data.strip() else []
    except json.JSONDecodeError as ex:
        raise _error(
            "dataset.name",
            source,
            f"not valid JSON (line {ex.lineno}: {ex.msg})",
            "write a JSON list of strings or objects",
        ) from ex
    if not isinstance(document, list):
        raise _error(
            "dataset.name",
            source,
            f"the JSON document is a {type(document).__name__}, not a list",
            "write a JSON list of strings or objects",
        )
    return _rows_from_items([(f"item {i}", item) for i, item in enumerate(document)], column=column, source=source)


def _rows_from_items(items: list[tuple[str, Any]], *, column: str | None, source: str) -> list[str]:
    """Texts of (where, item) pairs: a string item is the text; an object item holds it under the resolved column.

    The column is resolved on the first object; a later object without it is an error naming where it is.
    """
    texts = []
    resolved: str | None = None
    for where, item in items:
        if isinstance(item, dict):
            resolved = resolved or _resolve_column(column, list(item), source)
            if resolved not in item:
                raise _error(
                    "dataset.column",
                    resolved,
                    f"{source} {where} has no {resolved!r} (its columns: {', '.join(map(str, item))})",
                    "give every row the same text column",
                )
            item = item[resolved]
        if item is None:
            continue
        if not isinstance(item, str):
            raise _error(
                "dataset.name",
                source,
                f"{where} is a {type(item).__name__}, not text",
                "make each row a string or an object whose text column is a string",
            )
        if item.strip():
            texts.append(item.strip())
    return texts


def _rows_from_csv(data: str, *, column: str | None, source: str) -> list[str]:
    reader = csv.DictReader(io.StringIO(data, newline=""))
    if not reader.fieldnames:
        return []
    resolved = _resolve_column(column, list(reader.fieldnames), source)
    return [row[resolved].strip() for row in reader if row.get(resolved) and row[resolved].strip()]


def _resolve_column(column: str | None, available: list[str], source: str) -> str:
    """`column` if available; with `column` None, the first of DEFAULT_COLUMNS that is available."""
    listed = ", ".join(map(str, available)) or "(none)"
    if column is not None:
        if column not in available:
            raise _error(
                "dataset.column",
                column,
                f"{source} has no such column (available: {listed})",
                "set dataset.column to one of the available columns",
            )
        return column
    for candidate in DEFAULT_COLUMNS:
        if candidate in available:
            return candidate
    raise _error(
        "dataset.column",
        "null",
        f"{source} has neither a 'text' nor a 'prompt' column (available: {listed})",
        "set dataset.column to the column holding the prompts",
    )


def _read_hf(name: str, *, split: str, column: str | None) -> list[str]:
    """Rows of Hugging Face dataset `name`, split `split`; any failure is a PromptError."""
    fix = (
        f"give a path to a {'/'.join(FILE_SUFFIXES)} file, or install the `datasets` package and have {name!r} "
        "cached (HF_DATASETS_OFFLINE=1 / HF_HUB_OFFLINE=1 load from the cache only)"
    )
    problem = "is neither an existing file nor a loadable Hugging Face dataset"
    try:
        import datasets
    except ImportError as ex:
        raise _error("dataset.name", name, f"{problem} (the `datasets` package is not installed)", fix) from ex
    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as ex:  # any loader failure (missing, offline, bad split) is the user's to fix
        raise _error("dataset.name", name, f"{problem} (split {split!r}: {type(ex).__name__}: {ex})", fix) from ex
    resolved = _resolve_column(column, list(dataset.column_names), name)
    return [text.strip() for text in dataset[resolved] if isinstance(text, str) and text.strip()]
