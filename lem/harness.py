"""The measurement order, and only that.

validate → environment → prepare (model, prompts) → idle baseline (before the model loads) → load (metered)
→ warmup (not metered) → [sync → open window on every device used → all measured batches → sync → close]
→ metrics → write. A failure in any phase writes a `failed` results.json naming the phase.
"""

from __future__ import annotations

import dataclasses
import datetime
import resource
import socket
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import lem
from lem.atomic import replace_atomically
from lem.backends.base import Backend, create_backend
from lem.config.rules import Finding, errors
from lem.config.schema import ExperimentConfig
from lem.console import print_summary
from lem.energy.baseline import Baseline, get_baseline
from lem.energy.devices import gpus_used_by_others, visible_gpu_indices
from lem.energy.estimate import CpuPowerModel
from lem.energy.meter import EnergyMeter
from lem.energy.sampler import TimeseriesSampler
from lem.energy.thermal import ThermalWait, wait_for_thermal_floor
from lem.environment import snapshot
from lem.errors import LemError
from lem.metrics import domain_energies, energy_metrics, request_metrics
from lem.model.resolve import cache_root, resolve_model
from lem.results.schema import RESULT_SCHEMA_VERSION, ErrorInfo, PhaseEnergy, Quality, Result
from lem.results.writer import TIMESERIES_FILE, config_hash, write_result
from lem.warmup import run_warmup

#: A window shorter than this is dominated by energy-counter update granularity (NVML updates every ~100 ms).
MIN_TRUSTED_WINDOW_S = 1.0
#: Idle power whose instantaneous samples vary more than this (CV) was not idle.
MAX_BASELINE_CV = 0.1


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


def _device_key(environment: dict[str, Any], gpu_indices: list[int], meter: EnergyMeter) -> str:
    host = environment["hostname"]
    uuids = {g["index"]: g["uuid"] for g in environment["gpus"]}
    parts = [uuids.get(i, f"{host}:gpu{i}") for i in meter.gpu_indices if i in gpu_indices]
    parts += [f"{host}:cpu{i}" for i in meter.cpu_indices]
    return "|".join(parts)


def _flags(
    quality: dict[str, Any], energy: Any, baseline: Baseline | None, target_rate_hz: float | None, slurm: dict[str, Any]
) -> list[str]:
    flags = []
    if energy.measured_energy_j is None:
        flags.append("no_measured_energy")
    flags += [f"net_clamped:{d.domain}" for d in energy.domains if d.net_clamped]
    if baseline is not None:
        flags += [f"baseline_unstable:{k}" for k, cv in baseline.power_cv.items() if cv > MAX_BASELINE_CV]
    if quality["window_duration_s"] < MIN_TRUSTED_WINDOW_S:
        flags.append("short_window")
    if quality["warmup"].converged is False:
        flags.append("warmup_not_converged")
    rate = quality["achieved_sample_rate_hz"]
    if target_rate_hz is not None and rate is not None and rate < 0.8 * target_rate_hz:
        flags.append("low_sample_rate")
    if quality["gpu_shared_with_other_processes"]:
        flags.append("gpu_shared")
    if quality["thermal_floor_reached"] is False:
        flags.append("thermal_floor_not_reached")
    if slurm.get("exclusive") is False:
        flags.append("node_shared")
    return flags


class _Run:
    """State of one run while it moves through the phases; writes results.json at the end either way."""

    def __init__(self, config: ExperimentConfig, findings: list[Finding], job_dir: Path) -> None:
        self.config = config
        self.job_dir = job_dir
        self.phase = "validate"
        self.phases_s: dict[str, float] = {}
        self._phase_started = time.perf_counter()
        config_dict = dataclasses.asdict(config)
        self.result = Result(
            result_schema_version=RESULT_SCHEMA_VERSION,
            lem_version=lem.__version__,
            status="running",
            created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            config=config_dict,
            config_hash=config_hash(config_dict),
            findings=[dataclasses.asdict(f) for f in findings],
            environment={"hostname": socket.gethostname()},
            phases_s=self.phases_s,
        )

    def enter(self, phase: str) -> None:
        """Record how long the current phase took (seconds) and move to `phase`."""
        now = time.perf_counter()
        self.phases_s[self.phase] = now - self._phase_started
        self.phase, self._phase_started = phase, now

    def fail(self, ex: BaseException) -> LemError:
        self.result.status = "failed"
        self.result.error = ErrorInfo(phase=self.phase, type=type(ex).__name__, message=str(ex))
        write_result(self.job_dir, self.result)
        if isinstance(ex, LemError):
            return ex
        return LemError(f"{self.phase} failed: {type(ex).__name__}: {ex}", phase=self.phase, exit_code=1)


def run_experiment(config: ExperimentConfig, findings: list[Finding], job_dir: Path) -> Result:
    """Run one experiment in the protocol's order; returns the written Result or raises LemError."""
    run = _Run(config, findings, job_dir)
    backend: Backend | None = None
    try:
        blocking = errors(findings)
        if blocking:
            raise LemError(f"{blocking[0].param}: {blocking[0].message}")
        run.enter("environment")
        gpu_indices = gpus_for_run(config, visible_gpu_indices())
        run.result.environment = snapshot(gpu_indices)
        run.enter("prepare")
        cache_dir = cache_root(config.cache_dir)
        model_path = resolve_model(config.model, cache_dir)
        prompts = prepare_prompts(config, model_path)
        run.enter("baseline")
        energy_cfg = config.energy
        power_model = (
            CpuPowerModel(
                energy_cfg.estimate_watts_per_core,
                energy_cfg.estimate_idle_fraction,
                run.result.environment["cpu"]["logical_cores"],
            )
            if energy_cfg.when_no_counter == "estimate"
            else None
        )
        meter = EnergyMeter(gpu_indices, meter_gpu=energy_cfg.gpu, meter_cpu=energy_cfg.cpu, power_model=power_model)
        if not meter.measured_domains() and energy_cfg.when_no_counter == "error":
            raise LemError(
                "energy.when_no_counter='error': no GPU or RAPL energy counter is available here; use "
                "'estimate' or 'unavailable' to run anyway",
                phase="baseline",
            )
        baseline, skipped = None, None
        if not (config.baseline.enabled and config.baseline.method != "off"):
            skipped = "baseline disabled in the config"
        elif not meter.measured_domains():
            skipped = "no hardware energy counter on any metered domain"
        else:
            baseline = get_baseline(
                meter,
                config.baseline,
                cache_dir / "baselines.json",
                _device_key(run.result.environment, gpu_indices, meter),
            )
        run.enter("load")
        backend = create_backend(config, model_path, gpu_indices)
        meter.begin("lem_load")
        load_info = backend.load()
        load_window = meter.end("lem_load")
        run.result.backend = {"name": backend.name, **dataclasses.asdict(load_info)}
        run.enter("warmup")
        warmup = run_warmup(lambda prompt: backend.generate([prompt]), prompts, config.warmup)
        if config.thermal.enabled:
            run.enter("thermal_floor")
            thermal = wait_for_thermal_floor(meter, baseline, config.thermal)
        else:
            thermal = ThermalWait(None, 0.0, "thermal floor disabled")
        run.enter("measure")
        temperature_start = meter.temperatures_c()
        shared_before = gpus_used_by_others(meter.gpus, meter.gpu_indices) if meter.gpu_indices else None
        sampler = (
            TimeseriesSampler(meter.gpus, meter.gpu_indices, config.timeseries.sample_rate_hz)
            if config.timeseries.enabled
            else None
        )
        with Progress(
            TextColumn("measuring"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            auto_refresh=False,
            transient=False,
        ) as progress:
            task = progress.add_task("measure", total=len(prompts))
            if sampler is not None:
                sampler.start()
            meter.begin("lem_measure")
            records = backend.generate(prompts, lambda n: progress.update(task, advance=n, refresh=True))
            window = meter.end("lem_measure")
            if sampler is not None:
                sampler.stop()
        run.enter("metrics")
        shared_after = gpus_used_by_others(meter.gpus, meter.gpu_indices) if meter.gpu_indices else None
        frame = sampler.to_frame() if sampler is not None else None
        power_columns = [c for c in frame.columns if c.endswith("_power_w")] if frame is not None else []
        peak_power_w = float(frame[power_columns].sum(axis=1).max()) if power_columns else None
        domains = domain_energies(window, baseline, power_model)
        load = PhaseEnergy(load_window.duration_s, domain_energies(load_window, None, power_model))
        metrics = request_metrics(
            records,
            window.duration_s,
            backend.timing_source,
            backend.peak_memory_bytes(),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            load_info.parameters,
        )
        energy = energy_metrics(
            window, domains, metrics.output_tokens, metrics.num_requests, peak_power_w, power_model, load
        )
        quality = {
            "window_duration_s": window.duration_s,
            "window_process_cpu_time_s": window.cpu_time_s,
            "timeseries_samples": len(sampler) if sampler is not None else 0,
            "achieved_sample_rate_hz": sampler.achieved_rate_hz() if sampler is not None else None,
            "baseline_age_s": baseline.age_s() if baseline is not None else None,
            "baseline_from_cache": baseline.from_cache if baseline is not None else None,
            "baseline_power_cv": baseline.power_cv if baseline is not None else {},
            "baseline_skipped_reason": skipped,
            "temperature_start_c": temperature_start,
            "temperature_end_c": meter.temperatures_c(),
            "gpu_shared_with_other_processes": None if shared_before is None else bool(shared_before or shared_after),
            "thermal_floor_reached": thermal.reached,
            "thermal_wait_s": thermal.waited_s,
            "warmup": warmup,
        }
        rate = config.timeseries.sample_rate_hz if sampler is not None else None
        run.result.metrics, run.result.energy = metrics, energy
        run.result.quality = Quality(
            **quality, flags=_flags(quality, energy, baseline, rate, run.result.environment["slurm"])
        )
        run.enter("write")
        if frame is not None and config.timeseries.save:
            replace_atomically(job_dir / TIMESERIES_FILE, lambda tmp: frame.to_parquet(tmp, index=False))
        run.result.status = "ok"
        path = write_result(job_dir, run.result)
        print_summary(run.result, str(path))
        return run.result
    except Exception as ex:
        raise run.fail(ex) from ex
    finally:
        if backend is not None:
            backend.close()
