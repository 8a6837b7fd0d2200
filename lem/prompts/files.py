"""Prompt rows from local files (.jsonl, .json, .txt, .csv) and the text column of rows that have columns."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from lem.prompts.base import prompt_error

FILE_SUFFIXES = (".jsonl", ".json", ".txt", ".csv")
#: Columns tried, in order, when `column` is None.
DEFAULT_COLUMNS = ("text", "prompt")


def read_file(path: Path, *, name: str, column: str | None) -> list[str]:
    """Every non-empty prompt text (stripped) of the file at `path` (`name` as the user gave it), by its suffix."""
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise prompt_error(
            "dataset.name",
            name,
            f"unsupported file type {suffix or '(none)'!r}",
            f"give a {'/'.join(FILE_SUFFIXES)} file",
        )
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as ex:
        raise prompt_error(
            "dataset.name", name, f"cannot read the file ({type(ex).__name__}: {ex})", "make it a readable UTF-8 file"
        ) from ex
    if suffix == ".jsonl":
        return rows_from_jsonl(data, column=column, source=name)
    if suffix == ".json":
        return _rows_from_json(data, column=column, source=name)
    if suffix == ".txt":
        return [line.strip() for line in data.splitlines() if line.strip()]
    return _rows_from_csv(data, column=column, source=name)


def rows_from_jsonl(data: str, *, column: str | None, source: str) -> list[str]:
    """Rows of a jsonl text: each non-empty line is a JSON string or a JSON object holding the text column."""
    items = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as ex:
            raise prompt_error(
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
        raise prompt_error(
            "dataset.name",
            source,
            f"not valid JSON (line {ex.lineno}: {ex.msg})",
            "write a JSON list of strings or objects",
        ) from ex
    if not isinstance(document, list):
        raise prompt_error(
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
            resolved = resolved or resolve_column(column, list(item), source)
            if resolved not in item:
                raise prompt_error(
                    "dataset.column",
                    resolved,
                    f"{source} {where} has no {resolved!r} (its columns: {', '.join(map(str, item))})",
                    "give every row the same text column",
                )
            item = item[resolved]
        if item is None:
            continue
        if not isinstance(item, str):
            raise prompt_error(
                "dataset.name",
                source,
                f"{where} is a {type(item).__name__}, not text",
                "make each row a string or an object whose text column is a string",
            )
        if item.strip():
            texts.append(item.strip())
    return texts


def _rows_from_csv(data: str, *, column: str | None, source: str) -> list[str]:
    """Rows of a CSV text with a header line: the resolved text column of each row."""
    reader = csv.DictReader(io.StringIO(data, newline=""))
    if not reader.fieldnames:
        return []
    resolved = resolve_column(column, list(reader.fieldnames), source)
    return [row[resolved].strip() for row in reader if row.get(resolved) and row[resolved].strip()]


def resolve_column(column: str | None, available: list[str], source: str) -> str:
    """`column` if available; with `column` None, the first of DEFAULT_COLUMNS that is available."""
    listed = ", ".join(map(str, available)) or "(none)"
    if column is not None:
        if column not in available:
            raise prompt_error(
                "dataset.column",
                column,
                f"{source} has no such column (available: {listed})",
                "set dataset.column to one of the available columns",
            )
        return column
    for candidate in DEFAULT_COLUMNS:
        if candidate in available:
            return candidate
    raise prompt_error(
        "dataset.column",
        "null",
        f"{source} has neither a 'text' nor a 'prompt' column (available: {listed})",
        "set dataset.column to the column holding the prompts",
    )
