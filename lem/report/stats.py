"""Statistics for the report: seeded percentile-bootstrap CIs, the two-group comparison and the Pareto front.

Pure numpy, no I/O. Every bootstrap draws from `numpy.random.default_rng(seed)` made afresh per call, so a figure
depends only on its own values, the seed and the number of resamples (never on the order figures are computed in).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CI_LEVEL = 0.95
#: A group with fewer runs (cycles/repeats) than this is flagged `few_cycles`: its CIs say little.
MIN_CYCLES = 3

Statistic = Callable[..., np.ndarray]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = CI_LEVEL,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of `statistic(sample, axis=1)`: `resamples` draws of len(values) with replacement.

    Returns (nan, nan) for fewer than two values: one run has no spread to resample.
    """
    sample = np.asarray(values, dtype=float)
    if sample.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = sample[rng.integers(0, sample.size, size=(resamples, sample.size))]
    estimates = statistic(draws, axis=1)
    tail_pct = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(estimates, [tail_pct, 100.0 - tail_pct])
    return float(low), float(high)


@dataclass(frozen=True)
class Estimate:
    """Mean and median of one metric over a group's runs, each with its bootstrap CI (same unit as the metric)."""

    n: int
    mean: float
    mean_low: float
    mean_high: float
    median: float
    median_low: float
    median_high: float

    @property
    def few_cycles(self) -> bool:
        """True when the group has fewer than MIN_CYCLES runs."""
        return self.n < MIN_CYCLES


def describe(
    values: Sequence[float] | np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> Estimate:
    """Mean and median with their bootstrap CIs; NaN values are left out, an empty sample gives NaNs and n=0."""
    sample = np.asarray(values, dtype=float)
    sample = sample[~np.isnan(sample)]
    if sample.size == 0:
        nan = float("nan")
        return Estimate(0, nan, nan, nan, nan, nan, nan)
    mean_ci = bootstrap_ci(sample, np.mean, resamples=resamples, seed=seed)
    median_ci = bootstrap_ci(sample, np.median, resamples=resamples, seed=seed)
    return Estimate(int(sample.size), float(sample.mean()), *mean_ci, float(np.median(sample)), *median_ci)


@dataclass(frozen=True)
class Comparison:
    """Group B against group A: `difference` = mean(B) − mean(A) with its bootstrap CI, and the verdict.

    verdict: "B lower" / "B higher" when the CI excludes 0, "no clear difference" when it contains 0,
    "too few runs" when either group has fewer than two runs.
    """

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    verdict: str


def compare(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = CI_LEVEL,
) -> Comparison:
    """Do A and B differ beyond the bootstrap CI of the difference of their means (each resampled on its own)?"""
    sample_a = np.asarray(a, dtype=float)
    sample_b = np.asarray(b, dtype=float)
    sample_a, sample_b = sample_a[~np.isnan(sample_a)], sample_b[~np.isnan(sample_b)]
    mean_a = float(sample_a.mean()) if sample_a.size else float("nan")
    mean_b = float(sample_b.mean()) if sample_b.size else float("nan")
    difference = mean_b - mean_a
    if sample_a.size < 2 or sample_b.size < 2:
        nan = float("nan")
        return Comparison(sample_a.size, sample_b.size, mean_a, mean_b, difference, nan, nan, "too few runs")
    rng = np.random.default_rng(seed)
    draws_a = sample_a[rng.integers(0, sample_a.size, size=(resamples, sample_a.size))].mean(axis=1)
    draws_b = sample_b[rng.integers(0, sample_b.size, size=(resamples, sample_b.size))].mean(axis=1)
    tail_pct = 100.0 * (1.0 - level) / 2.0
    low, high = (float(q) for q in np.percentile(draws_b - draws_a, [tail_pct, 100.0 - tail_pct]))
    if low > 0:
        verdict = "B higher"
    elif high < 0:
        verdict = "B lower"
    else:
        verdict = "no clear difference"
    return Comparison(sample_a.size, sample_b.size, mean_a, mean_b, difference, low, high, verdict)


def pareto_front(x: Sequence[float], y: Sequence[float], *, maximise_x: bool, maximise_y: bool) -> np.ndarray:
    """Boolean mask of the points no other point dominates (at least as good on both axes, better on one)."""
    xs = np.asarray(x, dtype=float) * (1.0 if maximise_x else -1.0)
    ys = np.asarray(y, dtype=float) * (1.0 if maximise_y else -1.0)
    front = np.ones(xs.size, dtype=bool)
    for i in range(xs.size):
        dominated_by = (xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))
        front[i] = not dominated_by.any()
    return front
