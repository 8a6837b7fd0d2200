"""Prefill and decode energy apart (`energy.phases=split`): the metered prefill pass, and the split of the window.

The prefill pass runs every prompt of the workload in the measured run's batches with exactly one output token, inside
one meter window, repeated until that window lasts at least `MIN_PREFILL_WINDOW_S`; one pass's energy is the window's
divided by the passes. Decode energy is the measured window's minus one prefill pass's, per domain, gross and net of
the same domain's idle power. vLLM clears its prefix cache at every generate call, so no pass and no window is served
from the cache a previous one filled. A decode figure that noise made negative is null and flagged, never printed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from lem.backends.base import Backend
from lem.console import print_line
from lem.energy.baseline import Baseline
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import EnergyMeter, WindowReading
from lem.metrics import domain_energies
from lem.numbers import ratio, total
from lem.results.schema import MEASURED_SOURCES, DomainEnergy, PhaseDomainEnergy, PhaseSplit

WINDOW_KEY = "lem_prefill"
#: The prefill window is repeated until it lasts at least this long: shorter windows are dominated by the energy
#: counters' update granularity (lem.assemble.MIN_TRUSTED_WINDOW_S).
MIN_PREFILL_WINDOW_S = 1.0


@dataclass(frozen=True)
class PrefillMeasurement:
    """The prefill window: the meter's reading over `passes` identical passes, and the input tokens and requests of
    one pass."""

    window: WindowReading
    passes: int
    input_tokens: int
    requests: int


def measure_prefill(
    backend: Backend, meter: EnergyMeter, prompts: list[str], min_duration_s: float = MIN_PREFILL_WINDOW_S
) -> PrefillMeasurement:
    """Run every prompt with exactly one output token, in the configured batches, inside one meter window, pass
    after pass until the window lasts at least `min_duration_s` seconds (at least one pass). One unmetered pass goes
    first: warm-up runs prompts one at a time, and the first pass at the batches' shapes is slower than the rest."""
    print_line(f"prefill: {len(prompts)} prompts x 1 output token, repeated for at least {min_duration_s:g} s")
    backend.generate(prompts, output_tokens=1)
    meter.begin(WINDOW_KEY)
    started, passes = time.perf_counter(), 0
    while True:
        generation = backend.generate(prompts, output_tokens=1)
        passes += 1
        if time.perf_counter() - started >= min_duration_s:
            break
    window = meter.end(WINDOW_KEY)
    records = generation.records
    return PrefillMeasurement(
        window=window,
        passes=passes,
        input_tokens=sum(r.input_tokens for r in records),
        requests=len(records),
    )


def _per_pass(value: float | None, passes: int) -> float | None:
    return None if value is None else value / passes


def _minus(full: float | None, part: float | None) -> float | None:
    return None if full is None or part is None else full - part


def _shown(value: float | None, flag: str, flags: list[str]) -> float | None:
    """`value`, or None with `flag` added where it is negative (noise larger than the decode energy)."""
    if value is not None and value < 0:
        flags.append(flag)
        return None
    return value


@dataclass(frozen=True)
class _Part:
    """Energy totals of one kind (measured or estimated) for prefill (one pass) and decode, J; decode may be < 0."""

    prefill_j: float | None
    prefill_net_j: float | None
    decode_j: float | None
    decode_net_j: float | None


def _part(rows: list[tuple[DomainEnergy, float | None, float | None]]) -> _Part | None:
    """Totals over (full-window domain, prefill J of one pass, prefill net J of one pass); None for no rows."""
    if not rows:
        return None
    prefill_j = total([p for _, p, _ in rows])
    prefill_net_j = total([n for _, _, n in rows])
    return _Part(
        prefill_j,
        prefill_net_j,
        _minus(total([d.energy_j for d, _, _ in rows]), prefill_j),
        _minus(total([d.net_energy_j for d, _, _ in rows]), prefill_net_j),
    )


def _method(prefill: PrefillMeasurement) -> str:
    """How the split was made, with this run's numbers."""
    passes = prefill.passes
    return (
        f"prefill: {passes} pass(es) of all {prefill.requests} prompts with exactly 1 output token, in the measured "
        "run's batches, no prompt cache carried between passes (vLLM's prefix cache is reset before each), after one "
        f"unmetered pass at the batches' shapes, metered in one window of {prefill.window.duration_s:.3f} s; prefill "
        f"energy = that window's / {passes}. decode: the measured window's energy minus one prefill pass's, per "
        "domain, gross and net of idle power (net = energy - idle power x each window's duration). J per input token "
        "= prefill energy / the input tokens of one pass; J per output token = decode energy / (output tokens - "
        "requests), since the prefill made each request's first token"
    )


def split_phases(
    prefill: PrefillMeasurement,
    prefill_domains: Sequence[DomainEnergy],
    window_domains: Sequence[DomainEnergy],
    output_tokens: int,
    requests: int,
) -> tuple[PhaseSplit, list[str]]:
    """Prefill (one pass) and decode (the measured window minus one pass) energy, per domain and in total, with the
    quality flags they raise. `prefill_domains` are the prefill window's DomainEnergy (lem.metrics.domain_energies
    with the same idle baseline as `window_domains`, the measured window's). Per token: prefill J / the input tokens
    of one pass; decode J / (`output_tokens` - `requests`), the first token of each request being the prefill's."""
    passes = prefill.passes
    flags = [f"prefill:{flag}" for flag in prefill.window.flags]
    flags += [f"prefill:net_clamped:{d.domain}" for d in prefill_domains if d.net_clamped]
    by_domain = {d.domain: d for d in prefill_domains}
    rows, domains = [], []
    for full in window_domains:
        part = by_domain.get(full.domain)
        prefill_j = _per_pass(part.energy_j, passes) if part is not None else None
        prefill_net_j = _per_pass(part.net_energy_j, passes) if part is not None else None
        rows.append((full, prefill_j, prefill_net_j))
        domains.append(
            PhaseDomainEnergy(
                domain=full.domain,
                source=full.source,
                prefill_j=prefill_j,
                prefill_net_j=prefill_net_j,
                decode_j=_shown(_minus(full.energy_j, prefill_j), f"decode_energy_negative:{full.domain}", flags),
                decode_net_j=_shown(
                    _minus(full.net_energy_j, prefill_net_j), f"decode_net_energy_negative:{full.domain}", flags
                ),
            )
        )
    measured = _part([row for row in rows if row[0].source in MEASURED_SOURCES])
    estimated = _part([row for row in rows if row[0].source == "estimate"])
    decode_tokens = output_tokens - requests
    empty = _Part(None, None, None, None)
    m, e = measured or empty, estimated or empty
    decode_j = _shown(m.decode_j, "decode_energy_negative", flags)
    decode_net_j = _shown(m.decode_net_j, "decode_net_energy_negative", flags)
    estimated_decode_j = _shown(e.decode_j, "estimated_decode_energy_negative", flags)
    estimated_decode_net_j = _shown(e.decode_net_j, "estimated_decode_net_energy_negative", flags)
    split = PhaseSplit(
        method=_method(prefill),
        prefill_passes=passes,
        prefill_window_s=prefill.window.duration_s,
        prefill_duration_s=prefill.window.duration_s / passes,
        prefill_input_tokens=prefill.input_tokens,
        decode_output_tokens=decode_tokens,
        prefill_energy_j=m.prefill_j,
        prefill_net_energy_j=m.prefill_net_j,
        decode_energy_j=decode_j,
        decode_net_energy_j=decode_net_j,
        prefill_j_per_input_token=ratio(m.prefill_j, prefill.input_tokens),
        prefill_net_j_per_input_token=ratio(m.prefill_net_j, prefill.input_tokens),
        decode_j_per_output_token=ratio(decode_j, decode_tokens),
        decode_net_j_per_output_token=ratio(decode_net_j, decode_tokens),
        estimated_prefill_energy_j=e.prefill_j,
        estimated_prefill_net_energy_j=e.prefill_net_j,
        estimated_decode_energy_j=estimated_decode_j,
        estimated_decode_net_energy_j=estimated_decode_net_j,
        estimated_prefill_j_per_input_token=ratio(e.prefill_j, prefill.input_tokens),
        estimated_decode_j_per_output_token=ratio(estimated_decode_j, decode_tokens),
        domains=domains,
    )
    return split, flags


def phase_split(
    prefill: PrefillMeasurement,
    baseline: Baseline | None,
    power_model: CpuPowerModel | None,
    window_domains: Sequence[DomainEnergy],
    output_tokens: int,
    requests: int,
) -> tuple[PhaseSplit, list[str]]:
    """split_phases over the prefill window's energy per domain, net of the same idle baseline as the window's."""
    prefill_domains = domain_energies(prefill.window, baseline, power_model)
    return split_phases(prefill, prefill_domains, window_domains, output_tokens, requests)
