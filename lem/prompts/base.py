"""What every prompt source shares: the error type, its one-line message and the tokenizer it counts with."""

from __future__ import annotations

from typing import Protocol

BUILTIN = "builtin"
SYNTHETIC = "synthetic"


class PromptError(ValueError):
    """Prompts cannot be loaded; the message is one line: `key=value: problem; fix: ...`."""


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer lem.prompts uses."""

    all_special_ids: list[int]

    def __len__(self) -> int: ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: list[int]) -> str: ...


def prompt_error(key: str, value: object, problem: str, fix: str) -> PromptError:
    """A PromptError whose message is `key=value: problem; fix: fix`, folded onto one line."""
    return PromptError(" ".join(f"{key}={value}: {problem}; fix: {fix}".splitlines()))
