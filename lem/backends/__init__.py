"""Backends: one folder each with `config.py` (its dataclass) and `backend.py` (its implementation)."""
