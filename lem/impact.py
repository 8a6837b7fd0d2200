"""CO2e and cost per 1M output tokens from a result's energy and metrics: one pure function, no I/O.

The figures follow the energy they come from: measured energy gives measured figures, lem's power-model estimate gives
`estimated_` figures in their own fields, and no energy gives null. Nothing is guessed: a missing input (grid
intensity, price) leaves its figures null.
"""

from __future__ import annotations

from lem.config.schema import ImpactConfig
from lem.results.schema import EnergyMetrics, Impact, Metrics

TOKENS = 1_000_000
J_PER_KWH = 3.6e6
S_PER_HOUR = 3600.0


def _times(value: float | None, factor: float | None) -> float | None:
    return None if value is None or factor is None else value * factor


def impact_figures(inputs: ImpactConfig, metrics: Metrics, energy: EnergyMetrics, gpus: int) -> Impact:
    """The Impact block of one run: `inputs` (config `impact.*`) applied to its J per output token (measured and
    estimated apart) and, for the instance cost, to the measured window's duration on `gpus` GPUs."""
    kwh = {
        kind: _times(j_per_token, TOKENS / J_PER_KWH * inputs.pue)
        for kind, j_per_token in (
            ("measured", energy.j_per_output_token),
            ("estimate", energy.estimated_j_per_output_token),
        )
    }
    instance = None
    if inputs.gpu_hour_price is not None and gpus > 0 and metrics.output_tokens > 0:
        gpu_hours = gpus * metrics.duration_s / S_PER_HOUR
        instance = inputs.gpu_hour_price * gpu_hours / metrics.output_tokens * TOKENS
    return Impact(
        grid_intensity_g_per_kwh=inputs.grid_intensity_g_per_kwh,
        pue=inputs.pue,
        price_per_kwh=inputs.price_per_kwh,
        gpu_hour_price=inputs.gpu_hour_price,
        currency=inputs.currency,
        gpus=gpus,
        kwh_per_1m_output_tokens=kwh["measured"],
        g_co2e_per_1m_output_tokens=_times(kwh["measured"], inputs.grid_intensity_g_per_kwh),
        energy_cost_per_1m_output_tokens=_times(kwh["measured"], inputs.price_per_kwh),
        estimated_kwh_per_1m_output_tokens=kwh["estimate"],
        estimated_g_co2e_per_1m_output_tokens=_times(kwh["estimate"], inputs.grid_intensity_g_per_kwh),
        estimated_energy_cost_per_1m_output_tokens=_times(kwh["estimate"], inputs.price_per_kwh),
        instance_cost_per_1m_output_tokens=instance,
    )


def impact_line(impact: Impact | None) -> str | None:
    """The figures in one line for the console (measured, then ESTIMATE, then instance cost); None when none."""
    if impact is None:
        return None
    parts = []
    for label, co2e, cost in (
        ("", impact.g_co2e_per_1m_output_tokens, impact.energy_cost_per_1m_output_tokens),
        ("ESTIMATE ", impact.estimated_g_co2e_per_1m_output_tokens, impact.estimated_energy_cost_per_1m_output_tokens),
    ):
        figures = [f"{co2e:.3g} g CO2e"] if co2e is not None else []
        figures += [f"{cost:.3g} {impact.currency} energy"] if cost is not None else []
        if figures:
            parts.append(label + ", ".join(figures))
    if impact.instance_cost_per_1m_output_tokens is not None:
        parts.append(f"{impact.instance_cost_per_1m_output_tokens:.3g} {impact.currency} instance")
    return "; ".join(parts) or None
