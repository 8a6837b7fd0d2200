"""The measurement order, and only that.

validate → environment → prepare (model, prompts) → idle baseline (before the model loads) → load (metered)
→ warmup (not metered) → [thermal floor] → [prefill (energy.phases=split, lem.phases: its own metered window)]
→ measure (lem.measure: one window over every device used) → metrics → write. Each phase is a function with
explicit inputs and outputs; `run_experiment` calls them in order. However the run ends (ok, failed, interrupted),
lem.run_record leaves a complete results.json naming the phase.
With scenario=serving (lem.serving), load starts the backend's server, warm-up sends it requests, and measure runs
the load generator with the meter's window on the steady state.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lem.assemble import IdleBaseline, assemble
from lem.atomic import replace_atomically
from lem.attribution import per_request_energy
from lem.backends.base import Backend, LoadInfo, create_backend
from lem.config.findings import Finding, errors
from lem.config.schema import ExperimentConfig
from lem.console import print_summary
from lem.energy.baseline import get_baseline
from lem.energy.devices import visible_gpu_indices
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import EnergyMeter, WindowReading
from lem.energy.node import NodePowerSampler, probe_node_power
from lem.energy.thermal import ThermalWait, wait_for_thermal_floor
from lem.engines import EngineKeeper, EngineLease, reuse_applies
from lem.environment import snapshot
from lem.errors import LemError
from lem.impact import impact_figures
from lem.measure import measure_window
from lem.model.resolve import cache_root, locate_model
from lem.phases import measure_prefill
from lem.results.schema import Result
from lem.results.writer import REQUESTS_FILE, TIMESERIES_FILE
from lem.run_record import RunRecord
from lem.serving.engine import ServedModel, measure_serving, serving_result
from lem.warmup import run_warmup

if TYPE_CHECKING:
    import pandas as pd


def run_experiment(
    config: ExperimentConfig, findings: list[Finding], job_dir: Path, engines: EngineKeeper | None = None
) -> Result:
    """Run one experiment in the protocol's order; returns the written Result, or raises LemError or RunInterrupted
    after writing a `failed` or `interrupted` one. With `engines` (and backend.reuse), the engine a previous job left
    there is taken over when its key matches, and this job's engine is left there when it succeeds."""
    with RunRecord(config, findings, job_dir) as run:
        refuse_error_findings(findings)
        run.enter("environment")
        gpu_indices = gpus_for_run(config, visible_gpu_indices())
        environment = run.result.environment = snapshot(gpu_indices)
        node_power, node_skipped_reason = check_node_power(config)
        run.enter("prepare")
        cache_dir = cache_root(config.cache_dir)
        model = locate_model(config.model, cache_dir, getattr(config.backend, "revision", None))
        environment["model"] = asdict(model)
        model_path = model.path
        prompts = prepare_prompts(config, model_path)
        run.enter("baseline")
        meter, power_model = build_meter(config, gpu_indices, environment)
        run.closes(meter)
        node = run.closes(NodePowerSampler()).start() if node_power else None
        devices = device_key(environment, meter, node is not None)
        engines = job_keeper(config, engines)
        idle = idle_baseline(config, meter, cache_dir / "baselines.json", devices, engines, node)
        run.enter("load")
        lease = run.closes(EngineLease(create_engine(config, model_path, gpu_indices, job_dir), engines))
        backend = lease.backend
        load_info, load_window = load_backend(lease, meter)
        run.result.backend = {"name": config.backend.name, **reuse_record(lease, load_window), **asdict(load_info)}
        run.enter("warmup")
        warmup = run_warmup(lambda prompt: backend.generate([prompt]), prompts, config.warmup)
        thermal = ThermalWait(None, 0.0, "thermal floor disabled")
        if config.thermal.enabled:
            run.enter("thermal_floor")
            thermal = wait_for_thermal_floor(meter, idle.baseline, config.thermal)
        prefill = None
        if config.energy.phases == "split":
            run.enter("prefill")
            prefill = measure_prefill(backend, meter, prompts)
        run.enter("measure")
        measure = measure_serving if isinstance(backend, ServedModel) else measure_window
        measured = measure(backend, meter, prompts, config.timeseries)
        if node is not None:
            node.stop()
        run.enter("metrics")
        run.result.metrics, run.result.energy, run.result.quality = assemble(
            measured,
            idle,
            power_model,
            (load_info, load_window),
            backend.peak_memory_bytes(),
            warmup,
            thermal,
            config.timeseries.sample_rate_hz if config.timeseries.enabled else None,
            environment["slurm"],
            prefill=prefill,
            node=(node, node_skipped_reason),
        )
        run.result.impact = impact_figures(config.impact, run.result.metrics, run.result.energy, len(gpu_indices))
        run.result.serving = serving_result(measured, run.result.energy)
        requests = per_request_energy(
            measured.requests, measured.window, run.result.energy.domains, measured.timeseries
        )
        if requests is not None:
            run.result.energy.requests = requests[1]
        run.enter("write")
        tables = {TIMESERIES_FILE: measured.timeseries if config.timeseries.save else None}
        tables[REQUESTS_FILE] = requests[0] if requests is not None else None
        write_tables(job_dir, tables)
        print_summary(run.result, str(run.write("ok")))
        lease.keep_for_next_job(load_info, idle, devices)
    return run.result


def write_tables(job_dir: Path, tables: dict[str, pd.DataFrame | None]) -> None:
    """Each table that exists as a parquet file in the job directory, atomically (before results.json)."""
    for name, frame in tables.items():
        if frame is not None:
            replace_atomically(job_dir / name, lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))


def refuse_error_findings(findings: list[Finding]) -> None:
    """The validate phase: a config with an error finding does not run."""
    blocking = errors(findings)
    if blocking:
        raise LemError(f"{blocking[0].param}: {blocking[0].message}")


def gpus_for_run(config: ExperimentConfig, visible: list[int]) -> list[int]:
    """The GPUs the run uses (and so meters): `gpus` if set, else as many visible GPUs as the backend needs."""
    if config.gpus is not None:
        return list(config.gpus)
    backend = config.backend
    needed = len(visible) if getattr(backend, "device_map", None) else backend.gpus_spanned()
    return visible[:needed]


def prepare_prompts(config: ExperimentConfig, model_path: str) -> list[str]:
    """The configured prompts (seeded selection, truncated with the model's tokenizer); PromptError → LemError."""
    from transformers import AutoTokenizer

    from lem.prompts import PromptError, load_prompts

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    try:
        return load_prompts(
            name=config.dataset.name,
            sample_size=config.dataset.sample_size,
            split=config.dataset.split,
            column=config.dataset.column,
            num_prompts=config.num_input_prompts,
            seed=config.random_seed,
            max_input_tokens=config.max_input_tokens,
            tokenizer=tokenizer,
        )
    except PromptError as ex:
        raise LemError(str(ex), phase="prepare") from ex


def build_meter(
    config: ExperimentConfig, gpu_indices: list[int], environment: dict[str, Any]
) -> tuple[EnergyMeter, CpuPowerModel | None]:
    """The meter over the run's GPUs and CPU packages, and the CPU power model where estimates are wanted. With
    scenario=serving the GPU work is the server's: the meter then never synchronises CUDA, so lem's process creates
    no CUDA context on the GPUs the server uses."""
    energy = config.energy
    power_model = None
    if energy.when_no_counter == "estimate":
        cores = environment["cpu"]["logical_cores"]
        power_model = CpuPowerModel(energy.estimate_watts_per_core, energy.estimate_idle_fraction, cores)
    meter = EnergyMeter(
        gpu_indices,
        meter_gpu=energy.gpu,
        meter_cpu=energy.cpu,
        power_model=power_model,
        sample_rate_hz=config.timeseries.sample_rate_hz,
        work_in_process=config.scenario.name != "serving",
    )
    if not meter.measured_domains() and energy.when_no_counter == "error":
        raise LemError(
            "energy.when_no_counter='error': no GPU or RAPL energy counter is available here; use "
            "'estimate' or 'unavailable' to run anyway",
            phase="baseline",
        )
    return meter, power_model


def device_key(environment: dict[str, Any], meter: EnergyMeter, node: bool) -> str:
    """The baseline cache's key: the metered GPUs by UUID, the CPU packages and (`node`) the BMC, on this host."""
    host = environment["hostname"]
    uuids = {g["index"]: g["uuid"] for g in environment["gpus"]}
    parts = [uuids.get(i, f"{host}:gpu{i}") for i in meter.gpu_indices]
    return "|".join(parts + [f"{host}:cpu{i}" for i in meter.cpu_indices] + ([f"{host}:node"] if node else []))


def check_node_power(config: ExperimentConfig) -> tuple[bool, str | None]:
    """energy.node: whether to sample the node's power, and why not where it was asked for (auto). For 'ipmi', where
    ipmitool is missing, refused, times out or reads deactivated: a LemError naming energy.node, before anything
    loads."""
    available, why = probe_node_power(config.energy.node)
    if config.energy.node == "ipmi" and not available:
        raise LemError(
            f"energy.node='ipmi': {why}; give lem access to the BMC through ipmitool, or use energy.node=auto "
            "(runs without a node figure where there is none) or off",
            phase="environment",
        )
    return available, why


def job_keeper(config: ExperimentConfig, engines: EngineKeeper | None) -> EngineKeeper | None:
    """The keeper this job reuses from and leaves its engine to (backend.reuse, offline scenario); a job that does not
    reuse closes what is kept first, so that no other engine is resident while it measures."""
    if engines is not None and not reuse_applies(config):
        engines.close()
        return None
    return engines


def idle_baseline(
    config: ExperimentConfig,
    meter: EnergyMeter,
    cache_file: Path,
    key: str,
    engines: EngineKeeper | None,
    node: NodePowerSampler | None,
) -> IdleBaseline:
    """Idle power before anything loads (cached per device set; the node's too where `node` samples it), or why there
    is none. While a previous job's engine is resident, the baseline taken before it loaded is used: none is ever
    measured with an engine loaded."""
    if not (config.baseline.enabled and config.baseline.method != "off"):
        return IdleBaseline(None, "baseline disabled in the config")
    if not meter.measured_domains() and node is None:
        return IdleBaseline(None, "no hardware energy counter on any metered domain")
    resident = engines.resident_baseline(key) if engines is not None else None
    if resident is not None and resident.baseline is not None:
        return resident
    return IdleBaseline(get_baseline(meter, config.baseline, cache_file, key, node), None)


def create_engine(config: ExperimentConfig, model_path: str, gpu_indices: list[int], job_dir: Path) -> Backend:
    """The backend (scenario=offline), or its server under load from lem's process (scenario=serving,
    lem.serving): started by `load`, stopped by `close`."""
    if config.scenario.name == "serving":
        return ServedModel(config, model_path, gpu_indices, job_dir)
    return create_backend(config, model_path, gpu_indices)


def load_backend(lease: EngineLease, meter: EnergyMeter) -> tuple[LoadInfo, WindowReading | None]:
    """Take over the kept engine (no window: nothing was loaded), or load the model inside its own metered window."""
    reused = lease.take_over()
    if reused is not None:
        return reused, None
    meter.begin("lem_load")
    load_info = lease.backend.load()
    return load_info, meter.end("lem_load")


def reuse_record(lease: EngineLease, load_window: WindowReading | None) -> dict[str, Any]:
    """The result's `backend.reused` (and the engine key it matched, or loaded under, where reuse is on)."""
    return {"reused": load_window is None, "reuse_key": lease.key}
