"""The figures the report summarises per group: name, label, unit, direction, and the table column of each energy
kind (measured and estimated kept apart); and the unit text of a cost figure."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: The unit of a cost figure: the currency its result's impact block names (config `impact.currency`).
CURRENCY = "currency"


@dataclass(frozen=True)
class Metric:
    """A per-job figure the report summarises; `columns` maps the energy kind ("" for none) to its table column.

    An `optional` figure (the impact figures, which need `impact.*` inputs) is summarised only where a job has it.
    """

    name: str
    label: str
    unit: str
    lower_is_better: bool
    columns: dict[str, str]
    optional: bool = False


METRICS = (
    Metric(
        "j_per_output_token",
        "J / output token",
        "J",
        True,
        {"measured": "j_per_output_token", "estimate": "estimated_j_per_output_token"},
    ),
    Metric(
        "output_tokens_per_j",
        "output tokens / J",
        "tok/J",
        False,
        {"measured": "output_tokens_per_j", "estimate": "estimated_output_tokens_per_j"},
    ),
    Metric("output_tokens_per_s", "throughput", "tok/s", False, {"": "output_tokens_per_s"}),
    Metric("latency_p50_s", "latency p50", "s", True, {"": "latency_p50_s"}),
    Metric("latency_p95_s", "latency p95", "s", True, {"": "latency_p95_s"}),
    Metric(
        "net_energy_j",
        "net energy",
        "J",
        True,
        {"measured": "measured_net_energy_j", "estimate": "estimated_net_energy_j"},
    ),
    Metric("node_energy_j", "node energy (BMC)", "J", True, {"": "node_energy_j"}, optional=True),
    Metric("rest_of_node_j", "rest of node (node − measured)", "J", True, {"": "rest_of_node_j"}, optional=True),
    Metric(
        "prefill_j_per_input_token",
        "prefill J / input token",
        "J",
        True,
        {"measured": "prefill_j_per_input_token", "estimate": "estimated_prefill_j_per_input_token"},
        optional=True,
    ),
    Metric(
        "decode_j_per_output_token",
        "decode J / output token",
        "J",
        True,
        {"measured": "decode_j_per_output_token", "estimate": "estimated_decode_j_per_output_token"},
        optional=True,
    ),
    *(
        Metric(
            f"request_{q}_j",
            f"J / request {q}",
            "J",
            True,
            {"measured": f"request_{q}_j", "estimate": f"estimated_request_{q}_j"},
            optional=True,
        )
        for q in ("p50", "p99")
    ),
    Metric(
        "g_co2e_per_1m_output_tokens",
        "CO2e / 1M output tokens",
        "g",
        True,
        {"measured": "g_co2e_per_1m_output_tokens", "estimate": "estimated_g_co2e_per_1m_output_tokens"},
        optional=True,
    ),
    Metric(
        "energy_cost_per_1m_output_tokens",
        "energy cost / 1M output tokens",
        CURRENCY,
        True,
        {"measured": "energy_cost_per_1m_output_tokens", "estimate": "estimated_energy_cost_per_1m_output_tokens"},
        optional=True,
    ),
    Metric(
        "instance_cost_per_1m_output_tokens",
        "instance cost / 1M output tokens",
        CURRENCY,
        True,
        {"": "instance_cost_per_1m_output_tokens"},
        optional=True,
    ),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}


def unit_text(metric: Metric, jobs: pd.DataFrame) -> str:
    """The metric's unit; for a cost, the currency the jobs' impact blocks name (all of them where they differ)."""
    if metric.unit != CURRENCY:
        return metric.unit
    column = "impact_currency"
    currencies = sorted(set(jobs[column].dropna())) if column in jobs else []
    return "/".join(currencies) or CURRENCY
