"""Warmup: unmeasured generation until latencies settle (CV rule) or for a fixed count."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from lem.config.schema import WarmupConfig
from lem.numbers import coefficient_of_variation
from lem.results.schema import WarmupReport


def should_stop(latencies_s: Sequence[float], config: WarmupConfig) -> bool:
    """Convergence mode: stop at max_prompts, or once min_prompts ran and the last `window` CV <= target_cv."""
    n = len(latencies_s)
    if n >= config.max_prompts:
        return True
    if n < max(config.min_prompts, config.window):
        return False
    return coefficient_of_variation(latencies_s[-config.window :]) <= config.target_cv


def run_warmup(step: Callable[[str], Any], prompts: Sequence[str], config: WarmupConfig) -> WarmupReport:
    """Call `step(prompt)` (one prompt per iteration, cycling through `prompts`) as the config says."""
    if not config.enabled:
        return WarmupReport(enabled=False, mode=config.mode, prompts=0, final_cv=None, converged=None)
    latencies: list[float] = []
    while True:
        if config.mode == "fixed" and len(latencies) >= config.count:
            break
        if config.mode == "convergence" and should_stop(latencies, config):
            break
        started = time.perf_counter()
        step(prompts[len(latencies) % len(prompts)])
        latencies.append(time.perf_counter() - started)
    window = latencies[-config.window :]
    final_cv = coefficient_of_variation(window) if len(window) > 1 else None
    converged = final_cv is not None and final_cv <= config.target_cv if config.mode == "convergence" else None
    return WarmupReport(enabled=True, mode=config.mode, prompts=len(latencies), final_cv=final_cv, converged=converged)
