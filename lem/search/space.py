"""A search space declared with Hydra's sweep syntax, as Optuna distributions, and a trial's parameters as overrides.

`choice(a,b)` and `a,b`: categorical; `range(1,9,2)` of integers: integer steps (other ranges: categorical);
`interval(0.1,0.9)`: float, `tag(log, interval(...))` on a log scale, `tag(int, interval(1,64))` integer. A plain
`key=value` is fixed for every trial. Per key the last override wins (the command line over `hydra.sweeper.params`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.types import IntervalSweep, Override, ValueType
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from lem.errors import LemError

#: Categorical values Optuna stores as they are; anything else is stored as its override text.
_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class SearchSpace:
    """The overrides every trial gets, and one distribution per searched key (as written, e.g. `+point`)."""

    fixed: list[str]
    distributions: dict[str, BaseDistribution]
    declared: dict[str, str]
    spellings: dict[str, dict[Any, str]] = field(default_factory=dict)

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The fixed overrides and the trial's `key=value` ones, in declaration order."""
        chosen = [f"{key}={self.spellings.get(key, {}).get(params[key], params[key])}" for key in self.distributions]
        return [*self.fixed, *chosen]


def _categorical(override: Override) -> tuple[CategoricalDistribution, dict[Any, str]]:
    texts = list(override.sweep_string_iterator())
    values = [v if isinstance(v, _SCALARS) else t for v, t in zip(override.sweep_iterator(), texts, strict=True)]
    return CategoricalDistribution(values), dict(zip(values, texts, strict=True))


def _distribution(override: Override) -> tuple[BaseDistribution, dict[Any, str]]:
    kind = override.value_type
    if kind == ValueType.INTERVAL_SWEEP:
        interval = override.value()
        assert isinstance(interval, IntervalSweep) and interval.start is not None and interval.end is not None
        log = "log" in interval.tags
        if "int" in interval.tags:
            return IntDistribution(int(interval.start), int(interval.end), log=log), {}
        return FloatDistribution(float(interval.start), float(interval.end), log=log), {}
    if kind == ValueType.RANGE_SWEEP:
        values = list(override.sweep_iterator())
        steps = {b - a for a, b in itertools.pairwise(values)}
        if values and all(type(v) is int for v in values) and len(steps) <= 1 and min(steps, default=1) > 0:
            return IntDistribution(values[0], values[-1], step=min(steps, default=1)), {}
    if kind in (ValueType.RANGE_SWEEP, ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
        return _categorical(override)
    raise LemError(
        f"{override.input_line}: hydra/sweeper=lem_search takes choice, range and interval sweeps, "
        f"not {kind.name if kind is not None else 'this value'}"
    )


def parse_space(overrides: list[Override]) -> SearchSpace:
    """The search space of `overrides` (Hydra's parsed `hydra.sweeper.params` then the command line's)."""
    by_key = {override.get_key_element(): override for override in overrides}  # the last wins, in first-seen place
    fixed, distributions, declared, spellings = [], {}, {}, {}
    for key, override in by_key.items():
        if not override.is_sweep_override():
            fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
            continue
        distributions[key], spellings[key] = _distribution(override)
        declared[key] = override.input_line or key
    if not distributions:
        raise LemError(
            "hydra/sweeper=lem_search: the search space is empty; declare it in hydra.sweeper.params or on the "
            "command line with Hydra's sweep syntax, e.g. backend.batch_size=choice(1,4,16)"
        )
    return SearchSpace(fixed, distributions, declared, spellings)


def describe(distribution: BaseDistribution) -> str:
    """A distribution in a few words, for the console and the study's record."""
    if isinstance(distribution, CategoricalDistribution):
        return "one of " + ", ".join(str(c) for c in distribution.choices)
    if isinstance(distribution, IntDistribution | FloatDistribution):
        scale = ", log scale" if distribution.log else ""
        step = f" step {distribution.step}" if getattr(distribution, "step", None) not in (None, 1) else ""
        kind = "integer" if isinstance(distribution, IntDistribution) else "float"
        return f"{kind} in [{distribution.low}, {distribution.high}]{step}{scale}"
    return repr(distribution)
