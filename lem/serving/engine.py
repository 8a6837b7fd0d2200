"""The served model as the harness sees it: a Backend whose load starts the server, and the serving window.

`ServedModel` implements lem.backends.base.Backend: `load` starts the backend's server (lem.serving.launch) and waits
for its health endpoint (the harness meters this as the load phase); `generate` sends requests one at a time, which
is what warm-up does (on vLLM their prefix-cache entries are salted, so the measured load cannot reuse them; on
TensorRT-LLM KV-cache reuse is off unless backend.enable_kv_cache_reuse); `close` stops
the server and everything it started. `measure_serving` is the measured phase: the load generator runs the whole
schedule while the meter's window opens and closes on the steady-state window's edges (lem.serving.window); only
the requests that complete inside it enter the result's metrics. Like lem.measure, this is where the layers meet:
the only module of lem.serving that imports the energy layer.

CPU estimates: the meter's estimate counts lem's own CPU time; here the work is done by the server, so the window's
CPU time is lem's plus the server's processes' (read at the window's edges), and the `host_cpu` estimate is
recomputed from that with the same power model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lem.atomic import write_text_atomic
from lem.attribution import RequestSet
from lem.backends.base import Generation, LoadInfo, ProgressCallback, RequestRecord
from lem.config.schema import ExperimentConfig, ServingScenario, TimeseriesConfig
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import DomainReading, EnergyMeter, WindowReading
from lem.energy.sampler import TimeseriesSampler
from lem.errors import LemError
from lem.measure import WINDOW_KEY, Measurement, sharing, telemetry
from lem.results.schema import EnergyMetrics
from lem.results.serving import ServingMetrics
from lem.serving.launch import LAUNCHERS, SERVER_LOG_FILE
from lem.serving.load import LoadRun, RequestFailed, RequestTiming, planned_send_times_s, run_load, send_sequentially
from lem.serving.server import Endpoint, ServerProcess, get_json, log_tail
from lem.serving.summary import completed_in_window, serving_metrics
from lem.serving.window import SteadyStateWindow

log = logging.getLogger(__name__)
REQUESTS_FILE = "serving_requests.jsonl"
#: timing_source of serving records: lem's timestamps of the streamed chunks, in lem's process.
TIMING_SOURCE = "stream_chunks"
#: Seconds to wait for a failing server to exit before deciding whether it died.
_EXIT_WAIT_S = 3.0


class ServedModel:
    """The configured backend's server, started and stopped by lem, spoken to over a Unix socket or a loopback port.
    `endpoint` and `sampling` (the launch's, with the served model's name) are set by `load`."""

    def __init__(self, config: ExperimentConfig, model_path: str, gpu_indices: list[int], job_dir: Path) -> None:
        assert isinstance(config.scenario, ServingScenario)
        self.scenario = config.scenario
        self.seed = config.random_seed
        self.job_dir = job_dir
        self.server = ServerProcess("server", job_dir / SERVER_LOG_FILE)
        try:
            launcher = LAUNCHERS[config.backend.name]
            self.launch = launcher(config, model_path, gpu_indices, job_dir, self.server)
        except BaseException:
            self.server.stop()  # removes its socket folder
            raise
        self.server.name = self.launch.name
        self.endpoint = Endpoint()
        self.sampling: dict[str, Any] = {}

    def load(self) -> LoadInfo:
        """Start the server and wait until /health answers (scenario.server_start_timeout_s)."""
        self.server.start(self.launch.command, self.launch.env, self.launch.transport)
        healthy_after_s = self.server.wait_healthy(
            self.scenario.server_start_timeout_s, "scenario.server_start_timeout_s"
        )
        endpoint = self.server.endpoint()
        assert endpoint is not None, "a healthy server has an endpoint"
        self.endpoint = endpoint
        resolved = json.loads(self.launch.resolved_path.read_text())
        served = get_json(self.endpoint, "/v1/models")["data"]
        self.sampling = {**self.launch.sampling, "model": served[0]["id"]}  # trtllm-serve requires the name
        settings = {
            **self.launch.settings,
            "engine_args": resolved["engine_args"],
            "server": {
                "argv": resolved["argv"],
                "log": str(self.server.log_path),
                "healthy_after_s": healthy_after_s,
                "served_models": [{"id": m["id"], "max_model_len": m.get("max_model_len")} for m in served],
            },
        }
        return LoadInfo(device=self.launch.device, parameters=None, settings=settings)

    def failure(self, ex: RequestFailed, phase: str) -> LemError:
        """The one-line error for a failed request: the server's death where it died, else the request's failure."""
        deadline = time.monotonic() + _EXIT_WAIT_S
        while self.server.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        tail = log_tail(self.server.log_path)
        if not self.server.alive():
            return LemError(
                f"the {self.server.name} exited with code {self.server.returncode()} during {phase} ({ex}); its log "
                f"{self.server.log_path} ends: {tail}",
                phase=phase,
            )
        return LemError(f"{ex}; the {self.server.name}'s log {self.server.log_path} ends: {tail}", phase=phase)

    def generate(
        self, prompts: list[str], on_progress: ProgressCallback | None = None, output_tokens: int | None = None
    ) -> Generation:
        """Send the prompts one at a time (warm-up), with the launch's warm-up fields (vLLM: a prefix-cache salt);
        records in prompt order.
        (`output_tokens` is for offline prefill passes; validation keeps energy.phases=split off serving.)"""
        origin_s = time.time()
        try:
            timings = send_sequentially(
                self.endpoint,
                prompts,
                self.sampling,
                extra_body=self.launch.warmup_body,
                request_timeout_s=self.scenario.request_timeout_s,
            )
        except RequestFailed as ex:
            raise self.failure(ex, "warmup") from ex
        if on_progress is not None:
            on_progress(len(timings))
        return Generation([_record(t) for t in timings], TIMING_SOURCE, origin_s)

    def peak_memory_bytes(self) -> int | None:
        """None: the memory is the server's (its engine arguments are in the result)."""
        return None

    def close(self) -> None:
        """Stop the server and every process it started."""
        self.server.stop()


def _record(timing: RequestTiming) -> RequestRecord:
    assert timing.sent_s is not None and timing.end_s is not None
    return RequestRecord(
        input_tokens=timing.input_tokens or 0,
        output_tokens=timing.output_tokens or len(timing.token_arrivals_s),
        started_s=timing.sent_s,
        finished_s=timing.end_s,
        first_token_s=timing.first_token_s,
    )


def _active_in_window(requests: list[RequestTiming], start_s: float, end_s: float) -> list[RequestTiming]:
    """The requests that were in flight at some time in the window: sent before it closed, ended after it opened."""
    return [
        r for r in requests if r.sent_s is not None and r.end_s is not None and r.sent_s < end_s and r.end_s > start_s
    ]


@dataclass(frozen=True)
class ServingMeasurement(Measurement):
    """A serving window: the offline Measurement over the requests completed in it, plus the whole load run."""

    run: LoadRun
    scenario: ServingScenario
    server_name: str
    server_start_s: float | None
    server_cpu_time_s: float
    requests_file: str
    in_window: RequestSet

    @property
    def requests(self) -> RequestSet:
        """Every request in flight during the window, charged for the tokens it processed inside it (a request that
        straddles an edge gets only its part), so that the shares add up to the window's energy."""
        return self.in_window


def with_server_cpu(window: WindowReading, power_model: CpuPowerModel | None, server_cpu_s: float) -> WindowReading:
    """The window with the server's CPU seconds added to lem's, and a `host_cpu` estimate recomputed from both."""
    cpu_time_s = window.cpu_time_s + server_cpu_s
    domains = []
    for reading in window.domains:
        if reading.domain == "host_cpu" and reading.source == "estimate" and power_model is not None:
            total_j, net_j = power_model.energy_j(window.duration_s, cpu_time_s)
            reading = DomainReading("host_cpu", "estimate", total_j, net_j)
        domains.append(reading)
    return dataclasses.replace(window, cpu_time_s=cpu_time_s, domains=tuple(domains))


def _write_requests(path: Path, requests: list[RequestTiming]) -> None:
    lines = []
    for r in requests:
        row = dataclasses.asdict(r)
        row.update(lag_s=r.lag_s, ttft_s=r.ttft_s, tpot_s=r.tpot_s, e2e_s=r.e2e_s)
        lines.append(json.dumps(row))
    write_text_atomic(path, "\n".join(lines) + "\n")


def measure_serving(
    backend: ServedModel, meter: EnergyMeter, prompts: list[str], timeseries: TimeseriesConfig
) -> ServingMeasurement:
    """Run the whole load; the meter's window covers the steady-state window only (scenario.* in the config)."""
    scenario, server = backend.scenario, backend.server
    temperature_start = meter.temperatures_c()
    sharing_before = sharing(meter, lem_holds_gpus=True)  # the server, lem's child, holds them
    sampler = (
        TimeseriesSampler(meter.gpus, meter.gpu_indices, timeseries.sample_rate_hz) if timeseries.enabled else None
    )
    edges: dict[str, float] = {}
    readings: list[WindowReading] = []

    def on_open(t: float) -> None:
        edges["origin_s"] = time.time() - t  # the wall-clock time the load's times count from
        meter.begin(WINDOW_KEY, sampler)
        edges["server_cpu_open_s"] = server.cpu_time_s()
        log.info("serving window opened at %.3f s of the load", t)

    def on_close(t: float) -> None:
        readings.append(meter.end(WINDOW_KEY))
        edges["server_cpu_close_s"] = server.cpu_time_s()
        log.info("serving window closed at %.3f s of the load (%s)", t, window.closes_at)

    def on_completed(progress: Progress, task: TaskID) -> None:
        if "origin_s" in edges and not readings:  # the window is open: a boundary for per-request energy
            meter.mark(WINDOW_KEY)
        progress.update(task, advance=1, refresh=True)

    window = SteadyStateWindow(scenario.num_requests, scenario.ramp_up_requests, on_open, on_close)
    planned = planned_send_times_s(scenario.request_rate, scenario.num_requests, backend.seed)
    columns = (TextColumn("serving"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, auto_refresh=False, transient=False) as progress:
        task = progress.add_task("serve", total=scenario.num_requests)
        if sampler is not None:
            sampler.start()
        try:
            run = run_load(
                backend.endpoint,
                prompts,
                backend.sampling,
                planned,
                window,
                max_concurrency=scenario.max_concurrency,
                drain=scenario.drain,
                request_timeout_s=scenario.request_timeout_s,
                on_completed=lambda: on_completed(progress, task),
            )
        except RequestFailed as ex:
            raise backend.failure(ex, "measure") from ex
        finally:
            if sampler is not None:
                sampler.stop()
    if not server.alive():
        raise LemError(
            f"the {server.name} exited with code {server.returncode()} during measure; its log {server.log_path} "
            f"ends: {log_tail(server.log_path)}",
            phase="measure",
        )
    requests_path = backend.job_dir / REQUESTS_FILE
    _write_requests(requests_path, run.requests)
    server_cpu_s = edges["server_cpu_close_s"] - edges["server_cpu_open_s"]
    assert readings and window.opened_s is not None and window.closed_s is not None, "the window never closed"
    done = completed_in_window(run.requests, window.opened_s, window.closed_s)
    active = _active_in_window(run.requests, window.opened_s, window.closed_s)
    origin_s = edges["origin_s"]
    return ServingMeasurement(
        window=with_server_cpu(readings[0], meter.power_model, server_cpu_s),
        generation=Generation([_record(r) for r in done], TIMING_SOURCE, origin_s),
        **telemetry(sampler, meter, temperature_start, sharing_before, lem_holds_gpus=True),
        run=run,
        scenario=scenario,
        server_name=backend.launch.name,
        server_start_s=server.healthy_after_s,
        server_cpu_time_s=server_cpu_s,
        requests_file=str(requests_path),
        in_window=RequestSet(
            Generation([_record(r) for r in active], TIMING_SOURCE, origin_s),
            [r.index for r in active],
            [r.prompt_index for r in active],
        ),
    )


def serving_result(measured: Measurement, energy: EnergyMetrics | None) -> ServingMetrics | None:
    """The result's `serving` block (None for an offline measurement)."""
    if not isinstance(measured, ServingMeasurement):
        return None
    scenario = measured.scenario
    return serving_metrics(
        measured.run,
        server=measured.server_name,
        request_rate_per_s=scenario.request_rate,
        max_concurrency=scenario.max_concurrency,
        ttft_slo_s=scenario.ttft_slo_s,
        tpot_slo_s=scenario.tpot_slo_s,
        energy=energy,
        server_start_s=measured.server_start_s,
        server_cpu_time_s=measured.server_cpu_time_s,
        requests_file=measured.requests_file,
    )
