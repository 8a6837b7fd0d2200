"""The built-in tiny Llama: builds offline, loads through the Auto classes, is deterministic and cached safely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from lem.model.tiny import COMPLETE_MARKER, TINY_MODEL_ID, TINY_MODEL_VERSION, ensure_tiny_model

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
TEXTS = [
    "Measuring energy per token: 42 joules in 3.5 seconds (after warm-up).",
    "  leading spaces, trailing spaces  \nand a second line\twith a tab",
    "Rare words like zymurgy, quixotic and xylophone still round-trip.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model built for the read-only tests of this module."""
    return ensure_tiny_model(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, also for the already imported huggingface_hub (it reads the variable at import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_folder_layout(model_dir: Path) -> None:
    assert model_dir.parent.name == "models"
    assert model_dir.name == f"{TINY_MODEL_ID}-v{TINY_MODEL_VERSION}"
    for name in (*MODEL_FILES, *TOKENIZER_FILES, COMPLETE_MARKER):
        assert (model_dir / name).is_file(), name
    leftovers = [p.name for p in model_dir.parent.iterdir() if p != model_dir and not p.name.endswith(".lock")]
    assert leftovers == []
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"
    assert config.get("dtype", config.get("torch_dtype")) == "float32"


def test_loads_offline_with_consistent_special_tokens(model_dir: Path, offline: None) -> None:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = model.config
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.dtype == torch.float32
    assert config.head_dim == config.hidden_size // config.num_attention_heads == 64
    assert config.num_hidden_layers == 2
    assert config.max_position_embeddings == 1024
    assert config.vocab_size == len(tokenizer) == 1024
    assert 300_000 <= sum(p.numel() for p in model.parameters()) <= 5_000_000
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert ids == (config.bos_token_id, config.eos_token_id, config.pad_token_id)
    generation = model.generation_config
    assert ids == (generation.bos_token_id, generation.eos_token_id, generation.pad_token_id)
    assert len(set(ids)) == 3


def test_greedy_generate_gives_exactly_the_requested_tokens(model_dir: Path, offline: None) -> None:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = tokenizer(["hello", "the weather in the mountains"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, do_sample=False, min_new_tokens=8, max_new_tokens=8)
    assert out.shape == (2, batch["input_ids"].shape[1] + 8)


def test_tokenizer_round_trips_text(model_dir: Path, offline: None) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for text in TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    common = tokenizer("energy measurement")["input_ids"]
    assert len(common) < len("energy measurement") // 2  # BPE merges were learned from the corpus


def test_build_is_deterministic(model_dir: Path, tmp_path: Path) -> None:
    again = ensure_tiny_model(tmp_path)
    first, second = _tensors(model_dir), _tensors(again)
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name
    for name in (*TOKENIZER_FILES, "config.json", "generation_config.json"):
        assert (model_dir / name).read_bytes() == (again / name).read_bytes(), name


def test_build_leaves_global_rng_untouched(tmp_path: Path) -> None:
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    ensure_tiny_model(tmp_path)
    assert torch.equal(torch.rand(4), expected)


def test_second_call_reuses_the_folder(tmp_path: Path) -> None:
    folder = ensure_tiny_model(tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert ensure_tiny_model(tmp_path) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps, "a complete model was rebuilt"


def test_folder_without_marker_is_rebuilt(model_dir: Path, tmp_path: Path) -> None:
    folder = ensure_tiny_model(tmp_path)
    (folder / COMPLETE_MARKER).unlink()
    (folder / "model.safetensors").write_bytes(b"truncated")
    assert ensure_tiny_model(tmp_path) == folder
    assert (folder / COMPLETE_MARKER).is_file()
    assert (folder / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert [p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")] == [folder.name]


def test_import_is_cheap() -> None:
    code = "import sys, lem.model.tiny; assert not {'torch', 'transformers', 'tokenizers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
