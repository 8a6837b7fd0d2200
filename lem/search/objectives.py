"""A trial's objective values, read from its results.json through lem.results' reader.

Energy-based objectives (J per output token, and the CO2e and cost figures that follow from it) are read from the
measured figure where the run measured one, else from lem's estimate; which one is the trial's `energy_source`
("measured" or "estimate"). A study never mixes the two (lem.search.study).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lem.errors import LemError
from lem.results.reader import JobResult
from lem.results.schema import Result

DIRECTIONS = ("minimize", "maximize")


def _latency(attribute: str, percentile: str) -> Callable[[Result], float | None]:
    def read(result: Result) -> float | None:
        distribution = getattr(result.metrics, attribute)
        return None if distribution is None else getattr(distribution, percentile)

    return read


#: Energy-based objectives: (the measured figure, lem's estimate of it).
ENERGY_OBJECTIVES: dict[str, tuple[Callable[[Result], float | None], Callable[[Result], float | None]]] = {
    "j_per_output_token": (
        lambda r: r.energy.j_per_output_token if r.energy else None,
        lambda r: r.energy.estimated_j_per_output_token if r.energy else None,
    ),
    "g_co2e_per_1m_output_tokens": (
        lambda r: r.impact.g_co2e_per_1m_output_tokens if r.impact else None,
        lambda r: r.impact.estimated_g_co2e_per_1m_output_tokens if r.impact else None,
    ),
    "energy_cost_per_1m_output_tokens": (
        lambda r: r.impact.energy_cost_per_1m_output_tokens if r.impact else None,
        lambda r: r.impact.estimated_energy_cost_per_1m_output_tokens if r.impact else None,
    ),
}
#: Objectives that do not depend on energy.
OTHER_OBJECTIVES: dict[str, Callable[[Result], float | None]] = {
    "output_tokens_per_s": lambda r: r.metrics.output_tokens_per_s if r.metrics else None,
    "requests_per_s": lambda r: r.metrics.requests_per_s if r.metrics else None,
    **{
        f"{name}_{p}_s": _latency(attribute, p)
        for name, attribute in (("latency", "latency_s"), ("ttft", "ttft_s"), ("itl", "itl_s"))
        for p in ("p50", "p95", "p99")
    },
    "instance_cost_per_1m_output_tokens": lambda r: r.impact.instance_cost_per_1m_output_tokens if r.impact else None,
}
OBJECTIVES = (*ENERGY_OBJECTIVES, *OTHER_OBJECTIVES)
_HINTS = {
    "j": " (no energy figure: is energy.when_no_counter=unavailable?)",
    "g": " (set impact.grid_intensity_g_per_kwh)",
    "energy": " (set impact.price_per_kwh)",
    "instance": " (set impact.gpu_hour_price; it needs a GPU)",
}


def check_objectives(objectives: dict[str, str]) -> None:
    """Raise LemError naming the key when an objective or its direction is not one lem knows."""
    if not objectives:
        raise LemError(
            "hydra.sweeper.objectives: empty; e.g. {j_per_output_token: minimize, output_tokens_per_s: maximize}"
        )
    for name, direction in objectives.items():
        if name not in OBJECTIVES:
            raise LemError(f"hydra.sweeper.objectives.{name}: unknown objective; use one of: {', '.join(OBJECTIVES)}")
        if direction not in DIRECTIONS:
            raise LemError(f"hydra.sweeper.objectives.{name}: {direction!r}; use minimize or maximize")


@dataclass(frozen=True)
class Outcome:
    """A finished trial: its objective values (None when it failed), energy source, and why it failed."""

    values: list[float] | None
    energy_source: str | None
    reason: str | None


def read_outcome(job: JobResult, objectives: list[str]) -> Outcome:
    """The objective values of a job that finished ok, or why there are none (the job's own error where it has one)."""
    result = job.result
    if job.status != "ok" or result is None:
        error = result.error if result is not None else None
        detail = f"{error.phase}: {error.type}: {error.message}" if error is not None else job.reason
        return Outcome(None, None, f"{job.status}" + (f" ({detail})" if detail else ""))
    energy_names = [name for name in objectives if name in ENERGY_OBJECTIVES]
    source = None
    if energy_names:
        measured = all(ENERGY_OBJECTIVES[name][0](result) is not None for name in energy_names)
        source = "measured" if measured else "estimate"
    values = []
    for name in objectives:
        if name in ENERGY_OBJECTIVES:
            value = ENERGY_OBJECTIVES[name][0 if source == "measured" else 1](result)
        else:
            value = OTHER_OBJECTIVES[name](result)
        if value is None:
            hint = _HINTS.get(name.split("_")[0], "")
            return Outcome(None, source, f"ok, but results.json has no {name}{hint}")
        values.append(float(value))
    return Outcome(values, source, None)
