"""Prompts for a measurement: the built-in set, synthetic prompts, local files or a Hugging Face dataset."""

from lem.prompts.base import PromptError
from lem.prompts.sources import load_prompts

__all__ = ["PromptError", "load_prompts"]
