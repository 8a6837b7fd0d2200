"""Energy from power samples: the one integration every sampler uses (GPU telemetry, node power)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def interval_energies_j(times_s: Sequence[float], power_w: Sequence[float], edges_s: Sequence[float]) -> np.ndarray:
    """Energy between each pair of consecutive `edges_s` (ascending, same clock as `times_s`), joules: trapezoids over
    the power samples (`times_s` ascending, at least one), with the power at each edge interpolated from the samples
    around it (held beyond the first and last, so one sample gives its power x duration). len(edges_s) - 1 values."""
    times = np.asarray(times_s, dtype=float)
    edges = np.asarray(edges_s, dtype=float)
    grid = np.union1d(times[(times > edges[0]) & (times < edges[-1])], edges)
    power = np.interp(grid, times, np.asarray(power_w, dtype=float))
    cumulative_j = np.concatenate(([0.0], np.cumsum(np.diff(grid) * (power[1:] + power[:-1]) / 2.0)))
    return np.diff(cumulative_j[np.searchsorted(grid, edges)])


def achieved_rate_hz(times_s: Sequence[float]) -> float | None:
    """Samples per second over the span of `times_s` (ascending); None with fewer than two samples."""
    if len(times_s) < 2 or times_s[-1] <= times_s[0]:
        return None
    return (len(times_s) - 1) / (times_s[-1] - times_s[0])
