"""The built-in tiny Llama: a randomly initialised, fully offline stand-in for a real checkpoint.

The model folder is a standard Hugging Face Llama checkpoint (float32 safetensors plus a
byte-level BPE tokenizer trained on the bundled ``corpus.txt``). Building it is deterministic:
on the same torch/tokenizers versions every build produces identical weights and tokenizer files.
Its output is gibberish; it exists so that the measurement pipeline can be exercised anywhere.
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from lem.atomic import install_folder

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TINY_MODEL_ID = "lem-tiny-llama"
TINY_MODEL_VERSION = 1  # bump whenever the build below changes, so stale caches are not reused
FIXED_SEED = 20240601
VOCAB_SIZE = 1024
MAX_POSITIONS = 1024
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>", "<unk>")  # trained first, so they get ids 0, 1, 2, 3
COMPLETE_MARKER = ".complete"
_SEEDED_INIT = threading.Lock()  # torch's RNG is process-global: one seeded construction at a time


def tiny_model_dir(cache_dir: Path) -> Path:
    """Return where the tiny model lives under ``cache_dir`` (it may not exist yet)."""
    return Path(cache_dir) / "models" / f"{TINY_MODEL_ID}-v{TINY_MODEL_VERSION}"


def ensure_tiny_model(cache_dir: Path) -> Path:
    """Build the tiny model under ``cache_dir`` unless a complete copy is there, and return its folder.

    The returned folder always holds a complete model (see `lem.atomic.install_folder`: built in a staging
    sibling, completion marker written last, renamed into place under a lock).
    """
    final = tiny_model_dir(cache_dir)
    if not (final / COMPLETE_MARKER).is_file():
        install_folder(final, _build, marker=COMPLETE_MARKER)
    return final


def _build(folder: Path) -> None:
    """Write the tokenizer, model, and finally the completion marker into ``folder``."""
    import tokenizers
    import torch
    import transformers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer()
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        dtype="float32",
    )
    # Seeded inside a forked RNG: deterministic weights, and the caller's RNG state is left untouched.
    with _SEEDED_INIT, torch.random.fork_rng(devices=[]):
        torch.manual_seed(FIXED_SEED)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    built_with = {lib.__name__: lib.__version__ for lib in (tokenizers, torch, transformers)}
    (folder / COMPLETE_MARKER).write_text(json.dumps(built_with) + "\n", encoding="utf-8")


def _train_tokenizer() -> PreTrainedTokenizerFast:
    """Train a byte-level BPE of ``VOCAB_SIZE`` tokens on the bundled corpus; lossless for any text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bos, eos, pad, unk = SPECIAL_TOKENS
    corpus = resources.files(__package__).joinpath("corpus.txt").read_text(encoding="utf-8")
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus.splitlines(keepends=True), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        model_max_length=MAX_POSITIONS,
        padding_side="left",  # decoder-only generation pads on the left
        clean_up_tokenization_spaces=False,  # keeps decode(encode(text)) == text
    )
