"""The measured window, and nothing else runs in it: sync → open the meter → every measured batch → sync → close.

Beside the work run only one sampler thread (at `timeseries.sample_rate_hz`: the timeseries, whose power samples
also integrate GPUs without an energy counter; with the timeseries off, the meter's own for such GPUs), and at each
boundary the backend reports (a batch's end; an engine step where a request got its first token or finished) one
read of the energy counters (a meter mark, for per-request energy) and a progress-bar update where prompts finished;
device reads for the quality block happen before the window opens and after it closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lem.attribution import RequestSet
from lem.backends.base import Backend, Generation
from lem.config.schema import TimeseriesConfig
from lem.energy.devices import gpu_sharing, worst_sharing
from lem.energy.meter import EnergyMeter, WindowReading
from lem.energy.sampler import TimeseriesSampler

if TYPE_CHECKING:
    import pandas as pd

WINDOW_KEY = "lem_measure"


@dataclass(frozen=True)
class Measurement:
    """One measured window: the meter's reading, what the backend generated, and the telemetry around it.

    `timeseries` is None when the sampler was off. `gpu_sharing` is the worse of the checks before and after the
    window (lem.energy.devices.gpu_sharing), None where there was none.
    """

    window: WindowReading
    generation: Generation
    timeseries: pd.DataFrame | None
    samples: int
    achieved_sample_rate_hz: float | None
    temperature_start_c: dict[str, float]
    temperature_end_c: dict[str, float]
    gpu_sharing: str | None

    @property
    def requests(self) -> RequestSet:
        """The requests that share the window's energy (lem.attribution): every prompt's, in prompt order."""
        return RequestSet.in_prompt_order(self.generation)


def sharing(meter: EnergyMeter, lem_holds_gpus: bool) -> str | None:
    """Who else computes on the metered GPUs (lem.energy.devices.gpu_sharing); None without metered GPUs.
    `lem_holds_gpus`: lem's process tree (lem, or a server it started) has contexts on them."""
    return gpu_sharing(meter.gpus, meter.gpu_indices, lem_holds_gpus) if meter.gpu_indices else None


def measure_window(
    backend: Backend, meter: EnergyMeter, prompts: list[str], timeseries: TimeseriesConfig
) -> Measurement:
    """Run every prompt through `backend` inside one meter window, with the sampler (if enabled) beside it."""
    temperature_start = meter.temperatures_c()
    sharing_before = sharing(meter, meter.on_cuda)
    sampler = (
        TimeseriesSampler(meter.gpus, meter.gpu_indices, timeseries.sample_rate_hz) if timeseries.enabled else None
    )
    columns = (TextColumn("measuring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, auto_refresh=False, transient=False) as progress:
        task = progress.add_task("measure", total=len(prompts))
        if sampler is not None:
            sampler.start()

        def boundary(finished: int) -> None:
            meter.mark(WINDOW_KEY)
            if finished:
                progress.update(task, advance=finished, refresh=True)

        try:
            meter.begin(WINDOW_KEY, sampler)
            generation = backend.generate(prompts, boundary)
            window = meter.end(WINDOW_KEY)
        finally:
            if sampler is not None:
                sampler.stop()
    return Measurement(
        window=window,
        generation=generation,
        **telemetry(sampler, meter, temperature_start, sharing_before, meter.on_cuda),
    )


def telemetry(
    sampler: TimeseriesSampler | None,
    meter: EnergyMeter,
    temperature_start_c: dict[str, float],
    sharing_before: str | None,
    lem_holds_gpus: bool,
) -> dict[str, Any]:
    """The Measurement fields around a window, read once it has closed: the sampler's table, sample count and rate,
    the temperatures at both edges, and the worse of the sharing check before the window and now."""
    return {
        "timeseries": sampler.to_frame() if sampler is not None else None,
        "samples": len(sampler) if sampler is not None else 0,
        "achieved_sample_rate_hz": sampler.achieved_rate_hz() if sampler is not None else None,
        "temperature_start_c": temperature_start_c,
        "temperature_end_c": meter.temperatures_c(),
        "gpu_sharing": worst_sharing(sharing_before, sharing(meter, lem_holds_gpus)),
    }
