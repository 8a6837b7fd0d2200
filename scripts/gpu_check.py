"""What to run first on a GPU host: does lem measure there, and how well? Writes a dated report to docs/validation/.

Steps, each in a child process with its own timeout inside one overall budget, each PASS, FAIL (with a one-line
reason) or SKIPPED (with why); a failing step does not stop the others:

1. versions: Python, torch (+CUDA), transformers, zeus, nvidia-ml-py, driver, GPUs; lem's own dependency bounds
   (pyproject.toml) and, for an installed engine, its row of the release table in docs/backends.md.
2. cuda: torch sees the GPU that NVML lists first (same UUID), and computes on it.
3. nvml: NVML's energy counter against its power readings (>= 10 Hz) integrated over a steady matmul load; PASS
   within 2 %.
4. lem_tiny: `python -m lem` (PyTorch backend, fp_precision=auto, the built-in tiny model) as a campaign of N cycles:
   J/output token (measured, its source), its CV over the cycles, throughput, window, flags.
5. overhead: lem's measured window with the 10 Hz telemetry sampler on and off, interleaved, through
   scripts/bench_overhead.py's `lem_window`: median ratio; PASS at most 1.03.
6. trtllm: scripts/check_trtllm_contract.py where tensorrt_llm is importable.
7. lem_real_model: step 4 on the largest causal LM under 2B parameters in the Hugging Face cache, if any.

    bash scripts/gpu_check.sh                   # on the GPU host (installs .whl/ wheels it lacks, then runs this)
    python3 scripts/gpu_check.py --device cpu --quick --cycles 2 --report-dir /tmp/r   # no CUDA: a smoke run

Exit status: 0 when no step failed, 1 otherwise. The report (Markdown, and JSON beside it) goes to
<report-dir>/gpu-check-<UTC date>-<gpu name>.md, and to $OUT as well when that is set.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STEPS = ("versions", "cuda", "nvml", "lem_tiny", "overhead", "trtllm", "lem_real_model")
#: Seconds each step may take at most; the overall budget cuts them shorter when it runs low.
STEP_TIMEOUT_S = {
    "versions": 90,
    "cuda": 60,
    "nvml": 90,
    "lem_tiny": 180,
    "overhead": 150,
    "trtllm": 120,
    "lem_real_model": 240,
}
#: A step is not started with less time than this left in the budget.
MIN_STEP_S = 20
#: NVML counter against integrated power: the largest difference that passes, percent.
NVML_TOLERANCE_PCT = 2.0
#: Sampler overhead target (scripts/bench_overhead.py): window with the sampler / window without.
OVERHEAD_TARGET = 1.03


@dataclass(frozen=True)
class Workload:
    """What one measured window runs: prompts, new tokens per prompt, static batch size."""

    prompts: int
    new_tokens: int
    batch_size: int

    def overrides(self) -> list[str]:
        """lem overrides for this workload, fixed-length output, fixed warmup (3 prompts) for a predictable time."""
        return [
            f"num_input_prompts={self.prompts}",
            f"max_output_tokens={self.new_tokens}",
            f"backend.batch_size={self.batch_size}",
            "fp_precision=auto",
            "warmup.mode=fixed",
            "warmup.count=3",
        ]


#: The built-in tiny model on an H200: 8 batches x 128 decode steps, a window of several seconds.
TINY = Workload(prompts=64, new_tokens=128, batch_size=8)
#: A real model of up to 2B parameters: 4 batches x 64 steps.
REAL = Workload(prompts=32, new_tokens=64, batch_size=8)
#: --quick: a window of about a second on a 2-core CPU.
QUICK = Workload(prompts=8, new_tokens=16, batch_size=4)


@dataclass
class StepResult:
    """One step's outcome (PASS, FAIL or SKIPPED), its one-line reason, its figures and the commands behind them."""

    name: str
    outcome: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def passed(ok: bool, reason: str, **figures: Any) -> StepResult:
    """PASS or FAIL by `ok`; the step's name and commands are filled in by the caller."""
    return StepResult("", "PASS" if ok else "FAIL", reason, figures)


def skipped(reason: str, **figures: Any) -> StepResult:
    return StepResult("", "SKIPPED", reason, figures)


def unavailable(args: argparse.Namespace, reason: str) -> StepResult:
    """What a missing GPU means: SKIPPED where none is expected (--device cpu), else FAIL."""
    return skipped(reason) if args.device == "cpu" else passed(False, reason)


def significant(value: float | None, digits: int = 6) -> float | None:
    """`value` rounded to `digits` significant digits, for the report."""
    return None if value is None else float(f"{value:.{digits}g}")


def command_line(argv: list[str]) -> str:
    """A command as a user would type it from the repository root (python3 for this interpreter)."""
    shown = ["python3" if a == sys.executable else a for a in argv]
    return shlex.join(shown).replace(str(REPO) + "/", "")


# --- 1. versions ------------------------------------------------------------------------------------------------------


def release_rows(path: Path) -> list[dict[str, str]]:
    """The release-pairs table of docs/backends.md (the one place it is kept), one dict per row keyed by header."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| lem extra |"))

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    header = cells(lines[start])
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, cells(line), strict=True)))
    return rows


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def row_engine(row: dict[str, str]) -> tuple[str, Any]:
    """(distribution, SpecifierSet of versions) of a row's engine cell: "vllm 0.33.0 (...)", "TensorRT-LLM 1.2.x"."""
    from packaging.specifiers import SpecifierSet

    name, version = row["engine release"].split()[:2]
    return normalise(name), SpecifierSet("==" + version.replace(".x", ".*"))


def row_bound(cell: str) -> Any:
    """The SpecifierSet a torch/transformers cell states in backticks ("`<=2.9` (...)"); None for "not recorded"."""
    from packaging.specifiers import SpecifierSet

    specs = re.findall(r"`([^`]+)`", cell)
    return SpecifierSet(",".join(specs)) if specs else None


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_release_table(rows: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """For every engine of the table that is installed: the row it matches and whether torch and transformers fit
    that row. Returns (lines, problems)."""
    engines = sorted({row_engine(row)[0] for row in rows})
    found = {name: v for name in engines if (v := installed_version(name)) is not None}
    if not found:
        return [f"no engine of the table installed ({', '.join(engines)}): its rows do not apply here"], []
    lines, problems = [], []
    for engine, version in found.items():
        matching = [row for row in rows if row_engine(row)[0] == engine and row_engine(row)[1].contains(version)]
        if not matching:
            problems.append(f"{engine} {version} is not in docs/backends.md's release table")
            continue
        row = matching[0]
        for package, column in (("torch", "torch"), ("transformers", "transformers")):
            have, bound = installed_version(package), row_bound(row[column])
            if bound is None:
                lines.append(f"{engine} {version}: {package} {have} (the table records no bound)")
            elif have is not None and bound.contains(have, prereleases=True):
                lines.append(f"{engine} {version}: {package} {have} fits `{bound}`")
            else:
                problems.append(f"{engine} {version} needs {package} `{bound}`, installed: {have}")
    return lines + problems, problems


def check_own_bounds() -> tuple[list[str], list[str]]:
    """lem's dependencies (pyproject.toml) against what is installed. Returns (lines, problems)."""
    from packaging.requirements import Requirement

    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    lines, problems = [], []
    for text in requirements:
        requirement = Requirement(text)
        have = installed_version(requirement.name)
        if have is None:
            lines.append(f"{requirement}: not installed")
        elif requirement.specifier.contains(have, prereleases=True):
            lines.append(f"{requirement}: {have}")
        else:
            problems.append(f"{requirement}: installed {have} is outside lem's bound")
    return lines + problems, problems


def step_versions(args: argparse.Namespace) -> StepResult:
    import torch

    from lem.config.machine import probe_machine
    from lem.environment import snapshot

    facts = probe_machine()
    environment = snapshot([gpu.index for gpu in facts.gpus])
    capabilities = {gpu.index: f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}" for gpu in facts.gpus}
    gpus = [{**gpu, "compute_capability": capabilities.get(gpu["index"])} for gpu in environment["gpus"]]
    table_lines, table_problems = check_release_table(release_rows(REPO / "docs" / "backends.md"))
    bound_lines, bound_problems = check_own_bounds()
    problems = table_problems + bound_problems
    figures = {
        "versions": environment["versions"],
        "torch_cuda": torch.version.cuda,
        "platform": environment["platform"],
        "gpus": gpus,
        "release_table": table_lines,
        "lem_dependency_bounds": bound_lines,
    }
    if problems:
        return passed(False, "; ".join(problems), **figures)
    where = ", ".join(f"{g['name']} (driver {g['driver']})" for g in gpus) or "no NVIDIA GPU"
    return passed(True, f"torch {torch.__version__} (CUDA {torch.version.cuda}); {where}; bounds hold", **figures)


# --- 2. cuda ----------------------------------------------------------------------------------------------------------


def step_cuda(args: argparse.Namespace) -> StepResult:
    import torch

    if args.device == "cpu":
        return skipped(f"--device cpu: not checked (torch.cuda.is_available() = {torch.cuda.is_available()})")
    if not torch.cuda.is_available():
        return passed(False, f"torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no CUDA device")
    import pynvml

    from lem.config.machine import visible_nvml_indices

    properties = torch.cuda.get_device_properties(0)
    pynvml.nvmlInit()
    try:
        nvml_uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(visible_nvml_indices()[0]))
    finally:
        pynvml.nvmlShutdown()
    torch_uuid = f"GPU-{properties.uuid}"
    a = torch.randn(1024, 1024, device="cuda:0")
    computes = math.isfinite(float((a @ a.T).trace()))
    figures = {
        "devices": torch.cuda.device_count(),
        "device0": properties.name,
        "compute_capability": f"{properties.major}.{properties.minor}",
        "memory_gib": round(properties.total_memory / 2**30, 1),
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "torch_uuid": torch_uuid,
        "nvml_uuid": nvml_uuid,
        "matmul_finite": computes,
    }
    same = nvml_uuid == torch_uuid
    reason = (
        f"cuda:0 is {properties.name}, NVML's first visible GPU (same UUID)"
        if same
        else f"cuda:0 is {torch_uuid}, NVML's first visible GPU is {nvml_uuid}: set CUDA_DEVICE_ORDER=PCI_BUS_ID"
    )
    return passed(same and computes, reason if computes else "a matmul on cuda:0 gave a non-finite result", **figures)


# --- 3. nvml ----------------------------------------------------------------------------------------------------------


def matmul_load(device: str, stop: threading.Event) -> None:
    """Square matmuls back to back on `device` until `stop` is set (bfloat16 on CUDA, float32 on CPU)."""
    import torch

    size, dtype = (8192, torch.bfloat16) if device == "cuda" else (256, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    while not stop.is_set():
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()


def step_nvml(args: argparse.Namespace) -> StepResult:
    import pynvml

    from lem.config.machine import visible_nvml_indices
    from lem.energy.integrate import achieved_rate_hz, interval_energies_j

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as ex:
        return unavailable(args, f"NVML does not answer: {ex}")
    try:
        indices = visible_nvml_indices()
        if not indices:
            return unavailable(args, "NVML lists no visible GPU")
        handle = pynvml.nvmlDeviceGetHandleByIndex(indices[0])
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except pynvml.NVMLError_NotSupported:
            return passed(False, "the GPU has no energy counter (older than Volta): lem integrates power there")
        window_s, settle_s = (2.0, 0.5) if args.quick else (args.nvml_window_s, 2.0)
        interval_s = 1.0 / 20.0
        stop = threading.Event()
        load = threading.Thread(target=matmul_load, args=(args.device, stop), daemon=True)
        load.start()
        time.sleep(settle_s)  # NVML's power reading is a moving average on recent GPUs: measure a steady load
        try:
            start_mj, start_s = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.monotonic()
            samples = [(start_s, pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)]
            next_s = start_s + interval_s
            while next_s < start_s + window_s:
                time.sleep(max(0.0, next_s - time.monotonic()))
                samples.append((time.monotonic(), pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0))
                next_s += interval_s
            samples.append((time.monotonic(), pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0))
            end_mj, end_s = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.monotonic()
        finally:
            stop.set()
            load.join()
    finally:
        pynvml.nvmlShutdown()
    counter_j = (end_mj - start_mj) / 1000.0
    times_s, powers = [t for t, _ in samples], [p for _, p in samples]
    (integrated_j,) = interval_energies_j(times_s, powers, [start_s, end_s])  # over the counter's own span
    difference_pct = 100.0 * (integrated_j - counter_j) / counter_j if counter_j > 0 else math.inf
    figures = {
        "window_s": round(end_s - start_s, 3),
        "counter_energy_j": round(counter_j, 3),
        "integrated_power_energy_j": round(float(integrated_j), 3),
        "difference_pct": round(difference_pct, 3),
        "power_samples": len(samples),
        "sample_rate_hz": round(achieved_rate_hz(times_s) or 0.0, 2),
        "power_mean_w": round(statistics.fmean(powers), 2),
        "power_min_w": round(min(powers), 2),
        "power_max_w": round(max(powers), 2),
        "load": f"{'bfloat16 8192x8192' if args.device == 'cuda' else 'float32 256x256'} matmuls on {args.device}",
    }
    ok = abs(difference_pct) <= NVML_TOLERANCE_PCT
    return passed(
        ok,
        f"counter {counter_j:.1f} J, integrated power {integrated_j:.1f} J over {end_s - start_s:.1f} s: "
        f"{difference_pct:+.2f} % ({'within' if ok else 'outside'} {NVML_TOLERANCE_PCT:g} %)",
        **figures,
    )


# --- 4. and 7. lem runs -----------------------------------------------------------------------------------------------


def lem_campaign(args: argparse.Namespace, label: str, model: str, workload: Workload) -> StepResult:
    """`python -m lem` as a campaign of args.cycles cycles on `model`; J/token and its CV read from results.json."""
    from lem.numbers import coefficient_of_variation
    from lem.results.reader import job_dirs, read_job

    sweep = args.work_dir / label
    argv = [
        sys.executable,
        "-m",
        "lem",
        "-m",
        "hydra/sweeper=lem_campaign",
        f"campaign.name=gpu_check_{label}",
        f"campaign.cycles={args.cycles}",
        f"hydra.sweep.dir={sweep}",
        f"model={model}",
        *workload.overrides(),
        *(["baseline.duration_s=1"] if args.quick else []),
    ]
    log = args.work_dir / f"{label}.log"
    with log.open("w") as out:
        finished = subprocess.run(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False)
    jobs = [read_job(d) for d in job_dirs(sweep)]
    results = [job.result for job in jobs if job.status == "ok" and job.result is not None]
    per_cycle = []
    for result in results:
        assert result.energy is not None and result.metrics is not None and result.quality is not None
        gpu_sources = sorted({d.source for d in result.energy.domains if d.domain.startswith("gpu")})
        per_cycle.append(
            {
                "cycle": result.config["campaign"]["cycle"],
                "j_per_output_token": significant(result.energy.j_per_output_token),
                "gpu_energy_sources": gpu_sources,
                "measured_energy_j": significant(result.energy.measured_energy_j),
                "output_tokens": result.metrics.output_tokens,
                "output_tokens_per_s": round(result.metrics.output_tokens_per_s, 1),
                "window_s": round(result.quality.window_duration_s, 3),
                "avg_power_w": significant(result.energy.avg_power_w),
                "flags": result.quality.flags,
                "device": result.backend.get("device"),
                "fp_precision": result.backend.get("settings", {}).get("fp_precision"),
            }
        )
    j_per_token = [c["j_per_output_token"] for c in per_cycle if c["j_per_output_token"] is not None]
    figures: dict[str, Any] = {
        "model": model,
        "workload": dataclasses.asdict(workload),
        "jobs_ok": f"{len(results)}/{args.cycles}",
        "j_per_output_token_median": significant(statistics.median(j_per_token)) if j_per_token else None,
        "j_per_output_token_cv": round(coefficient_of_variation(j_per_token), 4) if len(j_per_token) > 1 else None,
        "output_tokens_per_s_median": statistics.median(c["output_tokens_per_s"] for c in per_cycle)
        if per_cycle
        else None,
        "window_s_median": statistics.median(c["window_s"] for c in per_cycle) if per_cycle else None,
        "flags": sorted({flag for c in per_cycle for flag in c["flags"]}),
        "cycles": per_cycle,
        "log": str(log),
    }
    step = StepResult("", "FAIL", "", figures, [command_line(argv)])
    devices = sorted({str(c["device"]) for c in per_cycle})
    if finished.returncode != 0 or len(results) != args.cycles:
        step.reason = f"{len(results)}/{args.cycles} jobs ok; {why_not_ok(jobs, log, finished.returncode)}"
    elif len(j_per_token) != len(per_cycle) or any(c["gpu_energy_sources"] != ["counter"] for c in per_cycle):
        step.reason = "J/token not measured by an energy counter in every cycle: " + ", ".join(
            f"cycle {c['cycle']}: {c['gpu_energy_sources'] or 'no GPU domain'}" for c in per_cycle
        )
    elif args.device == "cuda" and not all(d.startswith("cuda") for d in devices):
        step.reason = f"the backend ran on {', '.join(devices)}, not on CUDA"
    else:
        step.outcome = "PASS"
        cv = figures["j_per_output_token_cv"]
        step.reason = (
            f"{args.cycles} cycles on {', '.join(devices)}: {figures['j_per_output_token_median']:.4g} J/output token "
            f"(median, NVML counter), CV {'n/a' if cv is None else f'{100 * cv:.2f} %'}, "
            f"{figures['output_tokens_per_s_median']:.0f} tok/s, window {figures['window_s_median']:.2f} s"
        )
    return step


def why_not_ok(jobs: list[Any], log: Path, returncode: int) -> str:
    """One line: the first job that did not finish ok and its error, else lem's last error line, else the status."""
    for job in jobs:
        if job.status == "ok":
            continue
        error = job.result.error if job.result is not None else None
        detail = f"failed in {error.phase}: {error.message}" if error is not None else f"{job.status}: {job.reason}"
        return f"{job.job_dir.name} {detail}".splitlines()[0]
    error_lines = [line for line in log.read_text().splitlines() if line.startswith("lem: error:")]
    return error_lines[-1] if error_lines else f"no job folder, exit status {returncode} (see {log})"


def step_lem_tiny(args: argparse.Namespace) -> StepResult:
    from lem.config.schema import TINY_MODEL_ID

    return lem_campaign(args, "lem_tiny", TINY_MODEL_ID, QUICK if args.quick else TINY)


def safetensors_parameters(folder: Path) -> int | None:
    """Parameters in a checkpoint folder, from its safetensors headers (no tensor is read); None without any."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        total += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    return total


def cached_causal_lm(max_parameters: float, cache_dir: Path | None = None) -> tuple[str, Path, int] | None:
    """(repo id, snapshot folder, parameters) of the largest causal LM in the Hugging Face cache (`cache_dir`, else
    the default) with at most `max_parameters` parameters in safetensors; None when there is none (or no cache)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None
    found = []
    for repo in cache.repos:
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            with contextlib.suppress(OSError, ValueError):
                config = json.loads((revision.snapshot_path / "config.json").read_text())
                causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in config.get("architectures") or [])
                parameters = safetensors_parameters(revision.snapshot_path) if causal else None
                if parameters is not None and parameters <= max_parameters:
                    found.append((parameters, repo.repo_id, revision.snapshot_path))
    if not found:
        return None
    parameters, repo_id, folder = max(found)
    return repo_id, folder, parameters


def step_lem_real_model(args: argparse.Namespace) -> StepResult:
    from huggingface_hub.constants import HF_HUB_CACHE

    if args.real_model is not None:
        model, note = args.real_model, "given by --real-model"
    else:
        found = cached_causal_lm(args.max_real_parameters)
        if found is None:
            return skipped(
                f"no causal LM of at most {args.max_real_parameters:.3g} parameters (safetensors) is in the "
                f"Hugging Face cache ({HF_HUB_CACHE}); nothing is downloaded"
            )
        repo_id, folder, parameters = found
        model, note = str(folder), f"{repo_id}, {parameters:,} parameters, from the Hugging Face cache"
    step = lem_campaign(args, "lem_real_model", model, QUICK if args.quick else REAL)
    step.figures["model_source"] = note
    step.reason = f"{note}: {step.reason}"
    return step


# --- 5. overhead ------------------------------------------------------------------------------------------------------


def step_overhead(args: argparse.Namespace) -> StepResult:
    from bench_overhead import lem_window

    from lem.config.schema import TINY_MODEL_ID

    workload = QUICK if args.quick else TINY
    common = [f"model={TINY_MODEL_ID}", *workload.overrides(), "baseline.method=off"]
    variants = {"sampler_10hz": ["timeseries.sample_rate_hz=10"], "sampler_off": ["timeseries.enabled=false"]}
    windows: dict[str, list[float]] = {name: [] for name in variants}
    cpu_times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_index in range(args.overhead_rounds):
        for name in order if round_index % 2 == 0 else order[::-1]:
            wall_s, cpu_s = lem_window([*common, *variants[name]], args.work_dir / "overhead" / f"{round_index}{name}")
            windows[name].append(wall_s)
            cpu_times[name].append(cpu_s)
    ratios = [on / off for on, off in zip(windows["sampler_10hz"], windows["sampler_off"], strict=True)]
    cpu_ratios = [on / off for on, off in zip(cpu_times["sampler_10hz"], cpu_times["sampler_off"], strict=True)]
    median = statistics.median(ratios)
    ok = median <= args.overhead_limit
    return passed(
        ok,
        f"window with the 10 Hz sampler / without: median {median:.3f} over {args.overhead_rounds} interleaved "
        f"rounds ({'at most' if ok else 'above'} {args.overhead_limit:g})",
        workload=dataclasses.asdict(workload),
        window_ratio_median=round(median, 4),
        window_ratios=[round(r, 4) for r in ratios],
        cpu_time_ratio_median=round(statistics.median(cpu_ratios), 4),
        window_s_sampler_10hz=[round(w, 3) for w in windows["sampler_10hz"]],
        window_s_sampler_off=[round(w, 3) for w in windows["sampler_off"]],
        overrides=common,
    )


# --- 6. trtllm --------------------------------------------------------------------------------------------------------


def step_trtllm(args: argparse.Namespace) -> StepResult:
    if importlib.util.find_spec("tensorrt_llm") is None:
        return skipped("tensorrt_llm is not installed")
    argv = [sys.executable, str(REPO / "scripts" / "check_trtllm_contract.py")]
    finished = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    lines = (finished.stdout + finished.stderr).strip().splitlines()
    step = passed(
        finished.returncode == 0,
        "the installed API matches lem's contract"
        if finished.returncode == 0
        else f"exit status {finished.returncode}: {len(lines)} lines, first: {lines[0] if lines else '(none)'}",
        version=installed_version("tensorrt-llm"),
        output=lines[:50],
    )
    step.commands = [command_line(argv)]
    return step


STEP_FUNCTIONS: dict[str, Callable[[argparse.Namespace], StepResult]] = {
    "versions": step_versions,
    "cuda": step_cuda,
    "nvml": step_nvml,
    "lem_tiny": step_lem_tiny,
    "overhead": step_overhead,
    "trtllm": step_trtllm,
    "lem_real_model": step_lem_real_model,
}
TITLES = {
    "versions": "Versions, GPUs, release table",
    "cuda": "torch on CUDA",
    "nvml": "NVML energy counter against integrated power",
    "lem_tiny": "lem, PyTorch backend, built-in tiny model",
    "overhead": "Telemetry sampler overhead",
    "trtllm": "TensorRT-LLM contract",
    "lem_real_model": "lem, PyTorch backend, a real model from the cache",
}


# --- the parent: steps in child processes, the report -----------------------------------------------------------------


def run_child(name: str, args: argparse.Namespace, timeout_s: float) -> StepResult:
    """One step in its own process group (killed whole on time-out), lem importable from this checkout; FAIL with one
    line if it dies."""
    result_path = args.work_dir / f"{name}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--step", name, *args.forwarded]
    command = command_line(argv)
    started = time.monotonic()
    log = args.work_dir / f"{name}.child.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    with log.open("w") as out:
        child = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            return StepResult(name, "FAIL", f"timed out after {timeout_s:.0f} s", {"log": str(log)}, [command])
    if not result_path.is_file():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        why = lines[-1] if lines else "no output"
        return StepResult(name, "FAIL", f"exit status {child.returncode}: {why}", {"log": str(log)}, [command])
    step = StepResult(**json.loads(result_path.read_text()))
    step.commands.append(command)
    step.duration_s = round(time.monotonic() - started, 1)
    return step


def child_main(name: str, args: argparse.Namespace) -> None:
    """In the child: run one step and write its StepResult as JSON; an exception is the step's FAIL line."""
    try:
        step = STEP_FUNCTIONS[name](args)
    except Exception as ex:
        step = StepResult("", "FAIL", f"{type(ex).__name__}: {ex}".splitlines()[0])
    step.name = name
    (args.work_dir / f"{name}.json").write_text(json.dumps(dataclasses.asdict(step), default=str))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def figure_lines(figures: dict[str, Any]) -> list[str]:
    """Figures as a Markdown table; nested lists and dicts as JSON in a code span."""
    lines = ["| figure | value |", "|---|---|"]
    for key, value in figures.items():
        shown = value if isinstance(value, str | int | float) or value is None else json.dumps(value, default=str)
        lines.append(f"| {key} | {str(shown).replace('|', '/')} |")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# lem GPU check, {report['created_at']}",
        "",
        f"Host `{report['host']}`, GPU: {report['gpu']}. Made by `{report['command']}` from the repository root "
        f"(git {report['git_commit']}), {report['duration_s']:.0f} s of a {report['budget_s']} s budget. "
        f"Overall: **{report['overall']}**.",
        "",
        "| step | outcome | s | reason |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {s['name']} | {s['outcome']} | {s['duration_s']:.0f} | {s['reason'].replace('|', '/')} |"
        for s in report["steps"]
    ]
    for s in report["steps"]:
        lines += ["", f"## {s['name']}: {TITLES[s['name']]}", "", f"**{s['outcome']}**: {s['reason']}", ""]
        lines += [f"    {command}" for command in s["commands"]]
        if s["figures"]:
            lines += ["", *figure_lines(s["figures"])]
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    finished = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return (finished.stdout.strip() or "unknown") + (" with local changes" if dirty else "")


def write_report(report: dict[str, Any], report_dir: Path) -> Path:
    """gpu-check-<UTC date>-<gpu>.md and .json in `report_dir`, copied to $OUT when set; returns the .md path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    stem = f"gpu-check-{report['created_at'][:10]}-{slug(report['gpu'])}"
    markdown = report_dir / f"{stem}.md"
    markdown.write_text(render_markdown(report))
    (report_dir / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
        out.mkdir(parents=True, exist_ok=True)
        for path in (markdown, report_dir / f"{stem}.json"):
            shutil.copy(path, out / path.name)
    return markdown


def parent_main(args: argparse.Namespace) -> int:
    started, created = time.monotonic(), datetime.datetime.now(datetime.UTC)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"lem GPU check: budget {args.budget_s} s, work folder {args.work_dir}", flush=True)
    steps = []
    for name in [n for n in STEPS if n == "versions" or not args.only or n in args.only]:
        left_s = args.budget_s - (time.monotonic() - started)
        if left_s < MIN_STEP_S:
            step = StepResult(name, "FAIL", f"not started: {left_s:.0f} s left of the {args.budget_s} s budget")
        else:
            step = run_child(name, args, min(STEP_TIMEOUT_S[name], left_s))
        steps.append(step)
        print(f"[{time.monotonic() - started:4.0f} s] {name}: {step.outcome}: {step.reason}", flush=True)
    gpus = steps[0].figures.get("gpus") or []
    report = {
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": os.uname().nodename,
        "gpu": gpus[0]["name"] if gpus else "no-gpu",
        "command": command_line([sys.executable, "scripts/gpu_check.py", *sys.argv[1:]]),
        "git_commit": git_commit(),
        "budget_s": args.budget_s,
        "duration_s": round(time.monotonic() - started, 1),
        "overall": "FAIL" if any(s.outcome == "FAIL" for s in steps) else "PASS",
        "steps": [dataclasses.asdict(s) for s in steps],
    }
    path = write_report(report, args.report_dir)
    print(f"report: {path}")
    return 1 if report["overall"] == "FAIL" else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a host without CUDA")
    parser.add_argument("--cycles", type=int, default=5, help="campaign cycles of each lem run")
    parser.add_argument("--quick", action="store_true", help="small workloads and a 2 s NVML window (tests)")
    parser.add_argument("--budget-s", type=int, default=450, help="the whole check, seconds")
    parser.add_argument("--report-dir", type=Path, default=REPO / "docs" / "validation")
    parser.add_argument("--work-dir", type=Path, default=None, help="lem's outputs; default outputs/gpu_check/<time>")
    parser.add_argument("--real-model", default=None, help="model for step 7 (id or folder); default: from the cache")
    parser.add_argument("--max-real-parameters", type=float, default=2e9)
    parser.add_argument("--overhead-rounds", type=int, default=3)
    parser.add_argument("--overhead-limit", type=float, default=OVERHEAD_TARGET)
    parser.add_argument("--nvml-window-s", type=float, default=10.0)
    parser.add_argument("--only", choices=STEPS, action="append", help="run this step and versions (repeatable)")
    parser.add_argument("--step", choices=STEPS, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.forwarded = list(argv)  # what each step's child gets, with the work folder the parent chose
    if args.work_dir is None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        args.work_dir = REPO / "outputs" / "gpu_check" / stamp
        args.forwarded += ["--work-dir", str(args.work_dir)]
    args.work_dir = args.work_dir.resolve()
    args.report_dir = args.report_dir.resolve()
    return args


def main() -> None:
    args = parse_args(sys.argv[1:])
    if args.step is not None:
        child_main(args.step, args)
        return
    sys.exit(parent_main(args))


if __name__ == "__main__":
    main()
