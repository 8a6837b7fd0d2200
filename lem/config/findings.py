"""Finding: one validation result. Rules (lem/config/rules.py and each backend's rules.py) return these."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from lem.config.machine import MachineFacts
    from lem.config.schema import ExperimentConfig

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One validation result; `param` is the Hydra key it concerns."""

    code: str
    severity: Severity
    param: str
    message: str

    def line(self) -> str:
        """One printable line."""
        return f"{self.severity.upper()} [{self.code}] {self.param}: {self.message}"


#: A validation rule: the findings for a config on a machine (warnings never block a run; errors always do).
Rule = Callable[["ExperimentConfig", "MachineFacts"], Iterable[Finding]]


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that block a run."""
    return [f for f in findings if f.severity == "error"]


def context_too_long(key: str, limit: int | None, needed: int, config: ExperimentConfig) -> Iterable[Finding]:
    """CONTEXT_TOO_LONG where a backend's length limit `key` is set below the `needed` tokens of the workload; a
    warning where it leaves no room for the special tokens the tokenizer adds (prompts are cut to max_input_tokens
    without them, and most tokenizers add a BOS token: the longest prompt would then be one over)."""
    limits = f"(max_input_tokens={config.max_input_tokens}, max_output_tokens={config.max_output_tokens})"
    if limit is not None and limit < needed:
        yield Finding(
            "CONTEXT_TOO_LONG",
            "error",
            key,
            f"{limit} is smaller than the {needed} tokens the workload needs {limits}; raise {key} or lower the "
            f"token limits",
        )
    elif limit is not None and limit == needed:
        yield Finding(
            "CONTEXT_NO_ROOM_FOR_SPECIAL_TOKENS",
            "warning",
            key,
            f"{limit} is exactly the {needed} tokens of the workload {limits}, with no room for the special tokens "
            f"(BOS) the tokenizer adds to each prompt: the engine may reject the longest prompt; set {key} to at "
            f"least {needed + 1}",
        )
