"""lem: measure the energy efficiency of LLM inference."""

__version__ = "0.1.0"
