"""The serving figures over the steady-state window: pure functions of a load run and the window's energy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lem.numbers import ratio
from lem.results.schema import EnergyMetrics
from lem.results.serving import Percentiles, ServingMetrics
from lem.serving.load import LoadRun, RequestTiming
from lem.serving.window import CLOSED_AT_LAST_SEND

ENERGY_PER_REQUEST_METHOD = (
    "window energy / requests completed in the window; each request's own share (by the tokens it processed in the "
    "window) is in requests.parquet"
)
#: A server kept up where the window's completions are at least this fraction of its sends.
KEPT_UP_FRACTION = 0.9


def percentiles(values: Sequence[float]) -> Percentiles | None:
    """Mean and p50/p90/p99 (linear interpolation); None for no values."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return Percentiles(float(array.mean()), float(p50), float(p90), float(p99), len(values))


def in_window(t: float | None, start_s: float, end_s: float) -> bool:
    """`t` in (start_s, end_s]: the completion that opens the window belongs to the ramp-up, the event that closes it
    to the window."""
    return t is not None and start_s < t <= end_s


def completed_in_window(requests: Sequence[RequestTiming], start_s: float, end_s: float) -> list[RequestTiming]:
    """The requests whose last token arrived inside the window (after the completion that opened it)."""
    return [r for r in requests if r.complete and in_window(r.end_s, start_s, end_s)]


def meets_slos(request: RequestTiming, ttft_slo_s: float, tpot_slo_s: float) -> bool:
    """TTFT and TPOT both within their SLOs (a request of one token has no TPOT: only TTFT counts)."""
    ttft, tpot = request.ttft_s, request.tpot_s
    return ttft is not None and ttft <= ttft_slo_s and (tpot is None or tpot <= tpot_slo_s)


def achieved_rate_per_s(requests: Sequence[RequestTiming]) -> float | None:
    """(sent - 1) / (last send - first send): the arrival rate the generator kept; None when all went at once."""
    sent = sorted(r.sent_s for r in requests if r.sent_s is not None)
    span = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    return (len(sent) - 1) / span if span > 0 else None


def serving_metrics(
    run: LoadRun,
    *,
    server: str,
    request_rate_per_s: float,
    max_concurrency: int | None,
    ttft_slo_s: float,
    tpot_slo_s: float,
    energy: EnergyMetrics | None,
    server_start_s: float | None = None,
    server_cpu_time_s: float | None = None,
    requests_file: str | None = None,
) -> ServingMetrics:
    """Everything over the window that `run.window` recorded (it must have opened and closed)."""
    window = run.window
    assert window.opened_s is not None and window.closed_s is not None, "the window never closed"
    start_s, end_s = window.opened_s, window.closed_s
    duration_s = end_s - start_s
    done = completed_in_window(run.requests, start_s, end_s)
    tokens = sum(1 for r in run.requests for t in r.token_arrivals_s if in_window(t, start_s, end_s))
    good = [r for r in done if meets_slos(r, ttft_slo_s, tpot_slo_s)]
    sent = sum(1 for r in run.requests if in_window(r.sent_s, start_s, end_s))
    measured_j = energy.measured_energy_j if energy is not None else None
    measured_net_j = energy.measured_net_energy_j if energy is not None else None
    estimated_j = energy.estimated_energy_j if energy is not None else None
    estimated_net_j = energy.estimated_net_energy_j if energy is not None else None
    return ServingMetrics(
        server=server,
        request_rate=str(request_rate_per_s),
        target_request_rate_per_s=None if math.isinf(request_rate_per_s) else request_rate_per_s,
        achieved_request_rate_per_s=achieved_rate_per_s(run.requests),
        max_concurrency=max_concurrency,
        num_requests=len(run.requests),
        window_rule=window.rule,
        window_closed_at=str(window.closes_at),
        window_start_s=start_s,
        window_end_s=end_s,
        window_duration_s=duration_s,
        requests_sent_in_window=sent,
        requests_completed_in_window=len(done),
        output_tokens_in_window=tokens,
        output_tokens_per_s=tokens / duration_s if duration_s > 0 else 0.0,
        completed_requests_per_s=len(done) / duration_s if duration_s > 0 else 0.0,
        goodput_requests_per_s=len(good) / duration_s if duration_s > 0 else 0.0,
        slo_attainment=ratio(len(good), len(done)),
        ttft_slo_s=ttft_slo_s,
        tpot_slo_s=tpot_slo_s,
        ttft_s=percentiles([r.ttft_s for r in done if r.ttft_s is not None]),
        tpot_s=percentiles([r.tpot_s for r in done if r.tpot_s is not None]),
        itl_s=percentiles([gap for r in done for gap in r.inter_token_s()]),
        e2e_latency_s=percentiles([r.e2e_s for r in done if r.e2e_s is not None]),
        send_lag_s=percentiles([r.lag_s for r in run.requests if r.lag_s is not None]),
        energy_per_request_method=ENERGY_PER_REQUEST_METHOD,
        j_per_request=ratio(measured_j, len(done)),
        net_j_per_request=ratio(measured_net_j, len(done)),
        estimated_j_per_request=ratio(estimated_j, len(done)),
        estimated_net_j_per_request=ratio(estimated_net_j, len(done)),
        load_duration_s=run.duration_s,
        cancelled_requests=sum(1 for r in run.requests if r.cancelled),
        server_start_s=server_start_s,
        server_cpu_time_s=server_cpu_time_s,
        requests_file=requests_file,
        server_kept_up=len(done) >= KEPT_UP_FRACTION * sent if window.closes_at == CLOSED_AT_LAST_SEND else None,
    )
