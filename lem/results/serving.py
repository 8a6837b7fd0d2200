"""The results.json block of a serving run (scenario=serving): the steady-state window's rates, latencies, goodput
and energy per request. Times in seconds, rates per second."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Percentiles:
    """Summary of per-request values of a serving window, seconds: mean and p50/p90/p99 (linear interpolation)."""

    mean: float
    p50: float
    p90: float
    p99: float
    count: int


@dataclass
class ServingMetrics:
    """A serving run (scenario=serving): a live server under a stated load, measured over a steady-state window.

    Times are seconds from the load's start. Figures are over the window (`window_rule`) unless named otherwise:
    latencies over the requests that completed in it, `output_tokens_in_window` counts the tokens that arrived in it
    (from the server's usage counts). `target_request_rate_per_s` is null for request_rate=inf (all at once);
    `achieved_request_rate_per_s` is (requests - 1) / (last send - first send) over the whole run. Goodput counts the
    window's completed requests that met both SLOs. Energy per request is the window's energy divided by the requests
    completed in it (`energy_per_request_method`); measured and estimated figures are kept apart as in EnergyMetrics.
    """

    server: str
    request_rate: str
    target_request_rate_per_s: float | None
    achieved_request_rate_per_s: float | None
    max_concurrency: int | None
    num_requests: int
    window_rule: str
    window_closed_at: str
    window_start_s: float
    window_end_s: float
    window_duration_s: float
    requests_sent_in_window: int
    requests_completed_in_window: int
    output_tokens_in_window: int
    output_tokens_per_s: float
    completed_requests_per_s: float
    goodput_requests_per_s: float
    slo_attainment: float | None
    ttft_slo_s: float
    tpot_slo_s: float
    ttft_s: Percentiles | None
    tpot_s: Percentiles | None
    itl_s: Percentiles | None
    e2e_latency_s: Percentiles | None
    send_lag_s: Percentiles | None
    energy_per_request_method: str
    j_per_request: float | None
    net_j_per_request: float | None
    estimated_j_per_request: float | None
    estimated_net_j_per_request: float | None
    load_duration_s: float
    cancelled_requests: int
    server_start_s: float | None
    server_cpu_time_s: float | None
    requests_file: str | None = None
    #: Whether the server kept up in the window: requests completed in it >= 90 % of those sent in it (a server that
    #: falls behind queues work, and its window is no steady state); None where the window closed at a completion.
    server_kept_up: bool | None = None
