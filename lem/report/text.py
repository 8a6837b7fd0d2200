"""How the report writes numbers and labels: one place for every table and sentence it prints."""

from __future__ import annotations

import math

from lem.report.figures import METRIC_BY_NAME
from lem.report.stats import MIN_CYCLES, Estimate

#: Error messages longer than this are cut in summary.md; results.parquet keeps them whole.
MAX_ERROR_CHARS = 240
#: How each energy kind is named in text: estimates in capitals, so that they are never read as measurements.
KIND_WORD = {"measured": "measured", "estimate": "ESTIMATE"}


def num(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.4g}"


def cut(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 1] + "…"


def with_ci(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "—"
    interval = "n<2, no CI" if math.isnan(low) else f"{num(low)}, {num(high)}"
    return f"{num(value)} [{interval}]"


def metric_label(metric: str, kind: str) -> str:
    return METRIC_BY_NAME[metric].label + (f" ({KIND_WORD[kind]})" if kind else "")


def estimate_text(estimate: Estimate) -> str:
    """A median with its CI, or why it has none."""
    if estimate.n < 2:
        return f"{num(estimate.median)} (1 run)"
    few = f", few_cycles: {estimate.n} runs" if estimate.n < MIN_CYCLES else f", {estimate.n} runs"
    return f"{num(estimate.median)} [95% CI {num(estimate.median_low)}, {num(estimate.median_high)}{few}]"
