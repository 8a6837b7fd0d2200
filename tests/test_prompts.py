"""Tests for lem.prompts: the built-in set and its data file, files, Hugging Face names, synthetic prompts, errors."""

from __future__ import annotations

import csv
import itertools
import json
import re
import statistics
import subprocess
import sys
import unicodedata
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from lem.prompts import PromptError, load_prompts
from lem.prompts.sources import BUILTIN_FILE

REPO = Path(__file__).resolve().parents[1]
TRAINING_LINES = [
    "The quick brown fox jumps over the lazy dog while the energy meter samples power.",
    "Language models read prompts, split them into tokens and generate text one token at a time.",
    "Summarise the passage, explain the answer, write the code and translate the sentence.",
    "A small model on a laptop still spends joules on every token it produces.",
    "Zoë Müller measured the café's kettle: 2.4 kWh per week, give or take.",
]


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """A byte-level BPE tokenizer trained offline on a few lines, wrapped as a Hugging Face fast tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TRAINING_LINES * 4, vocab_size=600, min_frequency=1, special_tokens=["<|endoftext|>"])
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")


def load(tokenizer: Any, **overrides: Any) -> list[str]:
    """load_prompts with the defaults of DatasetConfig and the experiment, overridden by keyword."""
    args: dict[str, Any] = {
        "name": "builtin",
        "sample_size": None,
        "split": "train",
        "column": None,
        "num_prompts": 8,
        "seed": 0,
        "max_input_tokens": 4096,
        "tokenizer": tokenizer,
    }
    return load_prompts(**{**args, **overrides})


def n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def error_of(tokenizer: Any, **overrides: Any) -> str:
    """The message of the PromptError load_prompts raises; asserts that it is one line."""
    with pytest.raises(PromptError) as info:
        load(tokenizer, **overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def builtin_bytes() -> bytes:
    return resources.files("lem.prompts").joinpath(BUILTIN_FILE).read_bytes()


def builtin_records() -> list[dict[str, str]]:
    return [json.loads(line) for line in builtin_bytes().decode("utf-8").splitlines()]


# --- built-in set -------------------------------------------------------------------------------------------------


def test_builtin_loads_the_requested_number_of_prompts(tokenizer: Any) -> None:
    prompts = load(tokenizer, num_prompts=25)
    texts = {record["text"] for record in builtin_records()}
    assert len(prompts) == 25
    assert len(set(prompts)) == 25
    assert all(prompt in texts for prompt in prompts)


def test_selection_is_deterministic_and_seeded(tokenizer: Any) -> None:
    assert load(tokenizer, seed=7) == load(tokenizer, seed=7)
    assert load(tokenizer, seed=7) != load(tokenizer, seed=8)


def test_more_prompts_extend_the_same_selection(tokenizer: Any) -> None:
    assert load(tokenizer, num_prompts=20)[:8] == load(tokenizer, num_prompts=8)


def test_sample_size_draws_a_pool_and_cycles_through_it_in_order(tokenizer: Any) -> None:
    prompts = load(tokenizer, sample_size=3, num_prompts=7)
    assert len(set(prompts)) == 3
    assert prompts == prompts[:3] * 2 + prompts[:1]
    assert load(tokenizer, sample_size=10_000, num_prompts=5) == load(tokenizer, num_prompts=5)


def test_num_prompts_beyond_the_source_cycles_rather_than_fails(tokenizer: Any) -> None:
    prompts = load(tokenizer, num_prompts=len(builtin_records()) + 5)
    assert prompts[-5:] == prompts[:5]


@pytest.mark.parametrize("max_input_tokens", [1, 5, 32])
def test_prompts_are_truncated_to_max_input_tokens(tokenizer: Any, max_input_tokens: int) -> None:
    prompts = load(tokenizer, num_prompts=60, max_input_tokens=max_input_tokens)
    counts = [n_tokens(tokenizer, prompt) for prompt in prompts]
    assert max(counts) <= max_input_tokens
    assert max(counts) >= max_input_tokens - 2  # long prompts are cut near the limit, not to nothing


def test_short_prompts_are_not_altered_by_truncation(tokenizer: Any) -> None:
    assert load(tokenizer, max_input_tokens=100_000, num_prompts=40) == load(tokenizer, num_prompts=40)


def test_builtin_set_is_large_and_varied() -> None:
    records = builtin_records()
    words = [len(record["text"].split()) for record in records]
    assert len(records) >= 300
    assert min(words) < 15
    assert max(words) > 150
    assert 8 <= statistics.median(words) <= 60
    assert len({record["category"] for record in records}) >= 8
    assert len({record["id"] for record in records}) == len(records)
    assert len({record["text"] for record in records}) == len(records)


def test_builtin_file_is_canonical() -> None:
    """The jsonl is the source of truth, edited by hand: these are the rules an edit must keep."""
    records = builtin_records()
    # One compact UTF-8 JSON object a line, keys in id/text/category order, "\n" endings, a final newline.
    canonical = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    assert builtin_bytes() == canonical
    assert all(list(record) == ["id", "text", "category"] for record in records)
    # Each category is one block, its ids `<category>-<nnn>` numbered from 001.
    blocks = [category for category, _ in itertools.groupby(record["category"] for record in records)]
    assert len(blocks) == len(set(blocks)), "a category's prompts stand together"
    seen: Counter[str] = Counter()
    for record in records:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", record["category"]), record["id"]
        seen[record["category"]] += 1
        assert record["id"] == f"{record['category']}-{seen[record['category']]:03d}"
    # Texts: stripped, no trailing spaces on a line, no runs of blank lines, NFC.
    for record in records:
        text = record["text"]
        assert text == text.strip() and text, record["id"]
        assert all(line == line.rstrip() for line in text.split("\n")), record["id"]
        assert "\n\n\n" not in text and "\r" not in text and "\t" not in text, record["id"]
        assert unicodedata.normalize("NFC", text) == text, record["id"]


def test_builtin_readme_describes_the_file() -> None:
    """data/README.md's count, category table and length figures are those of the file."""
    readme = resources.files("lem.prompts").joinpath("data/README.md").read_text(encoding="utf-8")
    prose = " ".join(readme.split())
    records = builtin_records()
    total = re.search(r"`dataset.name=builtin`: (\d+) English prompts", prose)
    assert total is not None and int(total.group(1)) == len(records)
    table = {name: int(count) for name, count in re.findall(r"^\| ([a-z-]+) \| (\d+) \|", readme, re.MULTILINE)}
    assert table == Counter(record["category"] for record in records)
    assert list(table) == list(dict.fromkeys(record["category"] for record in records))
    lengths = re.search(
        r"Lengths run from (\d+) to (\d+) words \(median (\d+)\): (\d+) prompts are under 15 words and (\d+) are "
        r"over 150",
        prose,
    )
    assert lengths is not None
    words = [len(record["text"].split()) for record in records]
    figures = (
        min(words),
        max(words),
        statistics.median(words),
        sum(w < 15 for w in words),
        sum(w > 150 for w in words),
    )
    assert tuple(int(g) for g in lengths.groups()) == figures


# --- local files --------------------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def file_sources(tmp_path: Path) -> dict[str, Path]:
    """The same three prompts (plus an id and a label column where the format has columns) in each format."""
    texts = ["first prompt", "second prompt, with a comma", "third prompt\nover two lines"]
    objects = [{"id": str(i), "label": f"L{i}", "prompt": text} for i, text in enumerate(texts)]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("\n".join(json.dumps(o) for o in objects) + "\n\n", encoding="utf-8")
    json_file = tmp_path / "p.json"
    json_file.write_text(json.dumps(objects), encoding="utf-8")
    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\n\n  second prompt, with a comma  \nthird prompt\n", encoding="utf-8")
    return {"jsonl": jsonl, "json": json_file, "csv": write_csv(tmp_path / "p.csv", objects), "txt": txt}


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
def test_files_with_columns_auto_detect_the_text_column(tokenizer: Any, tmp_path: Path, kind: str) -> None:
    path = file_sources(tmp_path)[kind]
    prompts = load(tokenizer, name=str(path), num_prompts=3)
    assert sorted(prompts) == ["first prompt", "second prompt, with a comma", "third prompt\nover two lines"]


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
def test_files_with_columns_honour_an_explicit_column(tokenizer: Any, tmp_path: Path, kind: str) -> None:
    path = file_sources(tmp_path)[kind]
    assert sorted(load(tokenizer, name=str(path), column="label", num_prompts=3)) == ["L0", "L1", "L2"]


def test_text_column_is_preferred_over_prompt(tokenizer: Any, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "both.csv", [{"prompt": "from prompt", "text": "from text"}])
    assert load(tokenizer, name=str(path), num_prompts=1) == ["from text"]


def test_txt_gives_one_prompt_per_non_empty_line(tokenizer: Any, tmp_path: Path) -> None:
    prompts = load(tokenizer, name=str(file_sources(tmp_path)["txt"]), num_prompts=3)
    assert sorted(prompts) == ["first prompt", "second prompt, with a comma", "third prompt"]


def test_jsonl_and_json_accept_plain_strings(tokenizer: Any, tmp_path: Path) -> None:
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text('"alpha"\n"beta"\n', encoding="utf-8")
    json_file = tmp_path / "s.json"
    json_file.write_text('["alpha", "beta", ""]', encoding="utf-8")
    for path in (jsonl, json_file):
        assert sorted(load(tokenizer, name=str(path), num_prompts=2)) == ["alpha", "beta"]


def test_a_small_file_is_cycled_to_num_prompts(tokenizer: Any, tmp_path: Path) -> None:
    prompts = load(tokenizer, name=str(file_sources(tmp_path)["txt"]), num_prompts=7)
    assert len(prompts) == 7
    assert prompts[3:6] == prompts[:3]


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
def test_wrong_column_lists_the_available_columns(tokenizer: Any, tmp_path: Path, kind: str) -> None:
    message = error_of(tokenizer, name=str(file_sources(tmp_path)[kind]), column="body")
    assert "dataset.column=body" in message
    assert "id, label, prompt" in message


def test_missing_default_column_asks_for_dataset_column(tokenizer: Any, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "q.csv", [{"question": "why?", "answer": "because"}])
    message = error_of(tokenizer, name=str(path))
    assert "dataset.column" in message
    assert "question, answer" in message


def test_missing_file_names_the_path(tokenizer: Any, tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    message = error_of(tokenizer, name=str(path))
    assert f"dataset.name={path}" in message
    assert "no such file" in message


@pytest.mark.parametrize("content", ["", "\n\n", '{"text": ""}\n{"text": "   "}\n'])
def test_empty_file_has_no_prompts(tokenizer: Any, tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    assert f"dataset.name={path}: no prompts found" in error_of(tokenizer, name=str(path))


def test_invalid_jsonl_names_the_line(tokenizer: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    assert "line 2" in error_of(tokenizer, name=str(path))


def test_unsupported_suffix_is_an_error(tokenizer: Any, tmp_path: Path) -> None:
    path = tmp_path / "prompts.parquet"
    path.write_bytes(b"PAR1")
    assert "unsupported file type '.parquet'" in error_of(tokenizer, name=str(path))


# --- Hugging Face datasets ----------------------------------------------------------------------------------------


def test_hf_name_without_datasets_installed_is_a_clear_error(tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError, installed or not
    message = error_of(tokenizer, name="someone/some-prompts")
    assert message.startswith("dataset.name=someone/some-prompts: ")
    assert "neither an existing file nor a loadable Hugging Face dataset" in message
    assert "`datasets` package is not installed" in message
    assert "install the `datasets` package" in message


# --- synthetic ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_input_tokens", [1, 16, 64, 257])
def test_synthetic_prompts_have_exactly_max_input_tokens(tokenizer: Any, max_input_tokens: int) -> None:
    prompts = load(tokenizer, name="synthetic", num_prompts=6, max_input_tokens=max_input_tokens, seed=3)
    assert [n_tokens(tokenizer, prompt) for prompt in prompts] == [max_input_tokens] * 6
    if max_input_tokens >= 16:
        assert len(set(prompts)) == 6


def test_synthetic_prompts_are_seeded(tokenizer: Any) -> None:
    def synthetic(seed: int) -> list[str]:
        return load(tokenizer, name="synthetic", num_prompts=3, max_input_tokens=16, seed=seed)

    assert synthetic(1) == synthetic(1)
    assert synthetic(1) != synthetic(2)


# --- argument errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"num_prompts": 0}, "num_input_prompts=0"),
        ({"num_prompts": -3}, "num_input_prompts=-3"),
        ({"max_input_tokens": 0}, "max_input_tokens=0"),
        ({"sample_size": 0}, "dataset.sample_size=0"),
    ],
)
def test_invalid_counts_name_the_key_and_value(tokenizer: Any, overrides: dict[str, int], expected: str) -> None:
    message = error_of(tokenizer, **overrides)
    assert message.startswith(f"{expected}: ")
    assert "fix:" in message


def test_prompt_error_is_a_value_error() -> None:
    assert issubclass(PromptError, ValueError)


def test_importing_the_module_does_not_import_torch_or_transformers() -> None:
    code = "import sys, lem.prompts; print(any(m in sys.modules for m in ('torch', 'transformers', 'datasets')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
