"""Energy of each request: the measured window's energy shared among the requests that did work in it.

The window is cut at the boundaries the backend reported (the meter's counter marks: a batch's end, an engine step
where a request got its first token or finished), so that the intervals tile it. A domain's energy in each interval
comes from its counter's readings at the interval's ends (RAPL, NVML without a timeseries), from the sampled power
timeline (GPUs when the timeseries ran, since NVML's counter updates only every 10-100 ms; GPUs integrated from
power), or from the interval's duration (estimates); the intervals are then scaled to sum to the domain's window
energy exactly, so that the requests' energies add up to the window's. An interval's energy goes to the requests in
proportion to the tokens each processed in it (PROCESSED_TOKENS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lem.backends.base import Generation
from lem.energy.integrate import interval_energies_j
from lem.energy.meter import WindowReading
from lem.results.schema import MEASURED_SOURCES, DomainEnergy, EnergySpread, RequestEnergySummary
from lem.results.writer import REQUESTS_FILE

if TYPE_CHECKING:
    import pandas as pd

#: What "the tokens a request processed in an interval" means; stored with every per-request table.
PROCESSED_TOKENS = (
    "a request's prompt tokens count at its first output token (its prefill), its output tokens evenly from its first "
    "output token to its finish; where the first token was not observed (static batches), its prompt and output "
    "tokens evenly over its batch, counting every position the batch computed for it (a row that kept computing "
    "after its EOS is charged for it); an interval where no token was processed goes to the requests in flight, "
    "equally, and with none in flight to all requests by their tokens"
)


@dataclass(frozen=True)
class RequestSet:
    """The requests that share a window's energy: their records (times from `generation.origin_s`) with each one's
    request and prompt index (offline: both the prompt's place; serving: the load's request and the prompt it sent)."""

    generation: Generation
    request_index: list[int]
    prompt_index: list[int]

    @classmethod
    def in_prompt_order(cls, generation: Generation) -> RequestSet:
        """One request per prompt, in prompt order (an offline window)."""
        indices = list(range(len(generation.records)))
        return cls(generation, indices, indices)


@dataclass(frozen=True)
class RequestEnergies:
    """Joules per request (rows in request order) per domain: gross, and net shared in the same proportions; and how
    each domain's intervals were weighted (`counter marks`, `power timeline`, `duration`)."""

    gross_j: dict[str, np.ndarray]
    net_j: dict[str, np.ndarray | None]
    sources: dict[str, str]
    methods: dict[str, str]
    intervals: int


def _interval_index(edges: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The interval (edges[k], edges[k+1]] holding each time; -1 or len(edges)-1 outside the window."""
    return np.searchsorted(edges, times, side="left") - 1


def _spread(edges: np.ndarray, start: float, end: float, tokens: float) -> np.ndarray:
    """`tokens` spread evenly over [start, end] (all at `end` where the span is empty), cut at `edges`."""
    out = np.zeros(len(edges) - 1)
    if tokens <= 0:
        return out
    if end <= start:
        k = int(_interval_index(edges, np.array([end]))[0])
        if 0 <= k < len(out):
            out[k] = tokens
        return out
    overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0.0, None)
    return tokens * overlap / (end - start)


def processed_tokens(generation: Generation, edges_s: np.ndarray) -> np.ndarray:
    """Tokens each request (rows) processed in each interval between `edges_s` (wall-clock), as PROCESSED_TOKENS."""
    tokens = np.zeros((len(generation.records), len(edges_s) - 1))
    origin = generation.origin_s
    for row, record in enumerate(generation.records):
        computed = record.computed_output_tokens or record.output_tokens
        start, end = origin + record.started_s, origin + record.finished_s
        if record.first_token_s is None:
            tokens[row] = _spread(edges_s, start, end, record.input_tokens + computed)
            continue
        first = origin + record.first_token_s
        tokens[row] = _spread(edges_s, first, first, record.input_tokens + min(computed, 1))
        tokens[row] += _spread(edges_s, first, end, max(computed - 1, 0))
    return tokens


def _shares(generation: Generation, edges_s: np.ndarray) -> np.ndarray:
    """Each request's share (rows) of each interval's energy (columns); every column sums to 1."""
    tokens = processed_tokens(generation, edges_s)
    totals = tokens.sum(axis=1)
    origin = generation.origin_s
    starts = np.array([origin + r.started_s for r in generation.records])
    ends = np.array([origin + r.finished_s for r in generation.records])
    shares = np.zeros_like(tokens)
    for k in range(tokens.shape[1]):
        column = tokens[:, k]
        if column.sum() <= 0:
            column = ((starts <= edges_s[k + 1]) & (ends >= edges_s[k])).astype(float)
        if column.sum() <= 0:
            column = totals if totals.sum() > 0 else np.ones(len(totals))
        shares[:, k] = column / column.sum()
    return shares


def _weights(
    domain: str, source: str, window: WindowReading, edges_s: np.ndarray, timeline: pd.DataFrame | None
) -> tuple[np.ndarray, str]:
    """How a domain's window energy divides among the intervals (unnormalised), and the method's name."""
    column = f"{domain}_power_w"
    if domain.startswith("gpu") and timeline is not None and column in timeline and len(timeline) > 0:
        return interval_energies_j(timeline["timestamp"], timeline[column], edges_s), "power timeline"
    readings = [mark.energy_j.get(domain) for mark in window.marks]
    if source == "counter" and all(r is not None for r in readings):
        return np.clip(np.diff(np.array(readings, dtype=float)), 0.0, None), "counter marks"
    return np.diff(edges_s), "duration"


def attribute(
    generation: Generation, window: WindowReading, domains: Sequence[DomainEnergy], timeline: pd.DataFrame | None
) -> RequestEnergies | None:
    """Every domain's window energy shared among `generation`'s requests; None without requests or marks."""
    if not generation.records or len(window.marks) < 2:
        return None
    edges_s = np.array([mark.time_s for mark in window.marks])
    shares = _shares(generation, edges_s)
    gross, net, sources, methods = {}, {}, {}, {}
    for domain in domains:
        if domain.energy_j is None:
            continue
        weights, method = _weights(domain.domain, domain.source, window, edges_s, timeline)
        if weights.sum() <= 0:
            weights, method = np.diff(edges_s), "duration"
        fraction = shares @ (weights / weights.sum())
        gross[domain.domain] = domain.energy_j * fraction
        net[domain.domain] = None if domain.net_energy_j is None else domain.net_energy_j * fraction
        sources[domain.domain], methods[domain.domain] = domain.source, method
    return RequestEnergies(gross, net, sources, methods, len(edges_s) - 1)


def _total(parts: dict[str, np.ndarray | None], domains: list[str]) -> np.ndarray | None:
    """The sum over `domains` per request; None without a domain, or where one of them has no value."""
    if not domains or any(parts[d] is None for d in domains):
        return None
    return np.sum([parts[d] for d in domains], axis=0)


def method_text(energies: RequestEnergies) -> str:
    """One line: how the intervals were cut and each domain's weighting."""
    by_method: dict[str, list[str]] = {}
    for domain, method in energies.methods.items():
        by_method.setdefault(method, []).append(domain)
    weighting = "; ".join(f"{m}: {', '.join(d)}" for m, d in sorted(by_method.items()))
    return f"{energies.intervals} intervals between counter marks ({weighting}); shared by processed tokens"


def request_table(requests: RequestSet, energies: RequestEnergies, window: WindowReading) -> pd.DataFrame:
    """One row per request: indices, tokens, times (seconds from the window's start), TTFT, latency, `energy_j` and
    `net_energy_j` (measured domains together), `estimated_` twins (estimates), one column per domain, the method."""
    import pandas as pd

    records, origin = requests.generation.records, requests.generation.origin_s
    rows = len(records)
    measured = [d for d, s in energies.sources.items() if s in MEASURED_SOURCES]
    estimated = [d for d, s in energies.sources.items() if s == "estimate"]
    start = window.marks[0].time_s
    frame = pd.DataFrame(
        {
            "request_index": requests.request_index,
            "prompt_index": requests.prompt_index,
            "input_tokens": [r.input_tokens for r in records],
            "output_tokens": [r.output_tokens for r in records],
            "computed_output_tokens": [r.computed_output_tokens or r.output_tokens for r in records],
            "start_s": [origin + r.started_s - start for r in records],
            "end_s": [origin + r.finished_s - start for r in records],
            "ttft_s": [None if r.first_token_s is None else r.first_token_s - r.started_s for r in records],
            "latency_s": [r.finished_s - r.started_s for r in records],
        }
    )
    for name, parts, domains in (
        ("energy_j", energies.gross_j, measured),
        ("net_energy_j", energies.net_j, measured),
        ("estimated_energy_j", energies.gross_j, estimated),
        ("estimated_net_energy_j", energies.net_j, estimated),
    ):
        total = _total(parts, domains)  # type: ignore[arg-type]
        frame[name] = total if total is not None else [None] * rows
    for domain, values in energies.gross_j.items():
        frame[f"{domain}_energy_j"] = values
    frame["method"] = method_text(energies)
    return frame


def _spread_of(values: pd.Series) -> EnergySpread | None:
    """Mean, percentiles, min and max of one energy column; None where it has no values."""
    if values.isna().any():
        return None
    array = values.to_numpy(dtype=float)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return EnergySpread(float(array.mean()), float(p50), float(p90), float(p99), float(array.min()), float(array.max()))


def per_request_energy(
    requests: RequestSet, window: WindowReading, domains: Sequence[DomainEnergy], timeline: pd.DataFrame | None
) -> tuple[pd.DataFrame, RequestEnergySummary] | None:
    """The per-request table and its summary for the result; None where the window has no requests or marks."""
    energies = attribute(requests.generation, window, domains, timeline)
    if energies is None:
        return None
    frame = request_table(requests, energies, window)
    summary = RequestEnergySummary(
        file=REQUESTS_FILE,
        requests=len(frame),
        method=method_text(energies),
        processed_tokens=PROCESSED_TOKENS,
        energy_j=_spread_of(frame["energy_j"]),
        net_energy_j=_spread_of(frame["net_energy_j"]),
        estimated_energy_j=_spread_of(frame["estimated_energy_j"]),
    )
    return frame, summary
