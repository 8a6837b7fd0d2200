"""Synthetic prompts: seeded random plain words from the tokenizer's vocabulary, exactly `max_input_tokens` long."""

from __future__ import annotations

import random

from lem.prompts.base import SYNTHETIC, Tokenizer, prompt_error

#: Plain-word vocabulary entries synthetic prompts are drawn from (at most).
_SYNTHETIC_POOL = 1024
#: Encode/trim/pad rounds allowed before a synthetic prompt is declared impossible for the tokenizer.
_SYNTHETIC_REPAIRS = 32


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
        raise prompt_error(
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
    raise prompt_error(
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
    raise prompt_error(
        "dataset.name",
        SYNTHETIC,
        f"could not build a prompt of exactly {num_tokens} tokens with this tokenizer",
        "use dataset.name=builtin or a prompt file",
    )
