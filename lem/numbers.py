"""Arithmetic with lem's rules for missing and zero values, shared by every layer (it imports nothing from lem)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator; None when either is missing or the denominator is not positive (e.g. J per token
    of a run that produced no token, tokens per J of a run without an energy reading)."""
    return None if numerator is None or denominator is None or denominator <= 0 else numerator / denominator


def total(values: Sequence[float | None]) -> float | None:
    """The sum; None where there is nothing to sum or any value is missing (a domain without a reading)."""
    return float(sum(v for v in values if v is not None)) if values and None not in values else None


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population standard deviation over mean (0 for fewer than two values or a zero mean)."""
    mean = statistics.fmean(values) if values else 0.0
    return statistics.pstdev(values) / mean if len(values) > 1 and mean > 0 else 0.0
