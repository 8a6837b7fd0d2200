"""The GPU energy path on simulated NVIDIA GPUs: nvidia-ml-py's device functions answer (tests/zeus_seams.py), Zeus's
own NVIDIA classes and lem's code run unmodified; the full runs use the real harness and the built-in tiny model."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pynvml
import pytest
from conftest import compose_config, one_error_line, result_files, run_lem
from zeus_seams import SimulatedGpu, simulated_gpus

from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.energy.devices import gpu_sharing, zeus_gpus
from lem.energy.meter import EnergyMeter
from lem.energy.sampler import TimeseriesSampler
from lem.errors import LemError
from lem.harness import run_experiment
from lem.results.reader import read_result
from lem.results.schema import DomainEnergy, Result

#: A measured window of about 1.5 s on the 2-core CI machine (24 prompts one at a time x 64 tokens).
WINDOW = [
    "num_input_prompts=24",
    "max_output_tokens=64",
    "backend.batch_size=1",
    "fp_precision=float32",
    "warmup.max_prompts=4",
    "baseline.duration_s=0.5",
]


def pascal(power_w: float) -> SimulatedGpu:
    """A GPU older than Volta: no energy counter."""
    return SimulatedGpu(
        power_w=power_w,
        architecture=pynvml.NVML_DEVICE_ARCH_PASCAL,
        compute_capability=(6, 0),
        name="Tesla P100-PCIE-16GB",
    )


def run(job_dir: Path, *overrides: str) -> Result:
    """One experiment through the real harness, its lem cache beside the job directory."""
    config = compose_config(*WINDOW, f"cache_dir={job_dir.parent / 'cache'}", *overrides)
    return run_experiment(config, validate(config, probe_machine()), job_dir)


def gpu_domain(result: Result) -> DomainEnergy:
    """The measured window's one GPU domain."""
    assert result.energy is not None
    (domain,) = [d for d in result.energy.domains if d.domain.startswith("gpu")]
    return domain


@contextmanager
def when_phase_starts(phase: str, action: Callable[[], None]) -> Iterator[None]:
    """Call `action` as the run enters `phase` (lem's run record logs each phase at INFO)."""

    class Trigger(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == f"phase: {phase}":
                action()

    logger = logging.getLogger("lem.run_record")
    handler, level = Trigger(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def child_pids() -> set[int]:
    """This process's descendants now (other tests may have left some behind)."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def after_s(delay_s: float, action: Callable[[], None]) -> Callable[[], None]:
    """`action`, run `delay_s` seconds after the returned callable is called (inside the measured window)."""
    return lambda: threading.Timer(delay_s, action).start()


# --- the simulation itself, and lem's device layer on it --------------------------------------------------------------


def test_simulated_nvml_answers_as_the_library_does() -> None:
    gpu, old = SimulatedGpu(power_w=100.0), pascal(50.0)
    with simulated_gpus(gpu, old):
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(gpu.uuid)
            assert pynvml.nvmlDeviceGetHandleByIndex(0) is handle and pynvml.nvmlDeviceGetPowerUsage(handle) == 100_000
            start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            time.sleep(0.2)
            gpu.set_power_w(300.0)
            time.sleep(0.2)
            drawn_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - start_mj
            assert drawn_mj == pytest.approx(100 * 200 + 300 * 200, rel=0.1), "mJ: power integrated over real time"
            old_handle = pynvml.nvmlDeviceGetHandleByIndex(1)
            with pytest.raises(pynvml.NVMLError_NotSupported):
                pynvml.nvmlDeviceGetTotalEnergyConsumption(old_handle)
            with pytest.raises(pynvml.NVMLError_NotSupported):
                pynvml.nvmlDeviceGetMigMode(old_handle)
            with pytest.raises(pynvml.NVMLError_NotFound):
                pynvml.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000")
            gpu.pids = [os.getpid()]
            (process,) = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            assert process.pid == os.getpid() and process.usedGpuMemory > 0
            gpu.lost = True
            with pytest.raises(pynvml.NVMLError_GpuIsLost):
                pynvml.nvmlDeviceGetTemperatureV(handle, pynvml.NVML_TEMPERATURE_GPU)
        finally:
            pynvml.nvmlShutdown()


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, [0, 1, 2]),
        ("2,0", [2, 0]),
        ("UUID2", [2]),
        ("UUID1,0", [1, 0]),
        ("PREFIX2", [2]),  # CUDA takes a unique prefix of a UUID
        ("0,7,1", [0]),  # as in CUDA, the list ends at the first entry that names no GPU
        ("1,1", [1]),
        ("-1", []),
        ("GPU-ffffffff", []),
    ],
)
def test_visible_devices_resolved_by_index_and_uuid(
    visible: str | None, expected: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = [SimulatedGpu(uuid=f"GPU-{i}{i}{i}{i}aaaa-0000-0000-0000-00000000000{i}") for i in range(3)]
    names = {"UUID1": gpus[1].uuid, "UUID2": gpus[2].uuid, "PREFIX2": gpus[2].uuid[:12]}
    if visible is not None:
        for name, value in names.items():
            visible = visible.replace(name, value)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    for i, gpu in enumerate(gpus):
        gpu.name = f"GPU number {i}"
    with simulated_gpus(*gpus):
        facts = probe_machine()
        zeus = zeus_gpus()
        assert os.environ.get("CUDA_VISIBLE_DEVICES") == visible, "CUDA still sees the user's value"
        assert [g.name for g in facts.gpus] == [f"GPU number {i}" for i in expected]
        assert [g.index for g in facts.gpus] == list(range(len(expected)))
        zeus_names = [zeus.get_name(i) for i in range(len(zeus))] if zeus is not None else []
        assert zeus_names == [f"GPU number {i}" for i in expected], "Zeus sees the same GPUs, in the same order"


@pytest.mark.parametrize("mig", ["instance", "mode"])
def test_mig_is_refused_naming_cuda_visible_devices(mig: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = SimulatedGpu(mig_enabled=mig == "mode")
    if mig == "instance":
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-5c89e7d8-3a0b-5e2f-9a53-7a1bd2f4e4c1")
    with simulated_gpus(gpu), pytest.raises(LemError, match=r"^CUDA_VISIBLE_DEVICES=.*MIG.*whole GPU's power"):
        probe_machine()


def test_mig_instance_refused_in_one_line_before_anything_loads(tmp_path: Path) -> None:
    with simulated_gpus(SimulatedGpu()):
        finished = run_lem(
            cwd=tmp_path,
            env={"CUDA_VISIBLE_DEVICES": "MIG-5c89e7d8-3a0b-5e2f-9a53-7a1bd2f4e4c1", "LEM_CACHE_DIR": str(tmp_path)},
        )
    assert finished.returncode != 0
    line = one_error_line(finished.stderr)
    assert "CUDA_VISIBLE_DEVICES='MIG-5c89e7d8" in line and "whole GPU" in line
    assert not result_files(tmp_path) and not (tmp_path / "models").exists(), "refused before the model was touched"


@pytest.mark.parametrize(
    ("pids", "lem_holds_gpus", "expected"),
    [
        (["lem"], True, "exclusive"),
        (["lem", "stranger"], True, "shared"),
        (["stranger"], False, "shared"),
        ([], False, "exclusive"),
        (["host"], True, "unknown"),  # a container: NVML reports the host's ids, none of them lem's
        ([], True, "unknown"),
    ],
)
def test_gpu_sharing(pids: list[str], lem_holds_gpus: bool, expected: str) -> None:
    ids = {"lem": os.getpid(), "stranger": os.getppid(), "host": 4_000_000}
    with simulated_gpus(SimulatedGpu(pids=[ids[p] for p in pids])):
        gpus = zeus_gpus()
        assert gpus is not None and gpu_sharing(gpus, [0], lem_holds_gpus) == expected


def test_pre_volta_gpu_integrated_by_lems_sampler_with_no_other_poller() -> None:
    children = child_pids()
    with simulated_gpus(pascal(80.0)):
        meter = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None, sample_rate_hz=20.0)
        assert meter.integrated_gpus == [0] and meter.measured_domains() == ["gpu0"]
        meter.begin("w")
        time.sleep(0.5)
        assert any(t.name == "lem-timeseries" for t in threading.enumerate()), "lem's sampler runs in the window"
        assert not child_pids() - children, "and no power-polling process"
        window = meter.end("w")
    (reading,) = window.domains
    assert reading.source == "power_integration" and reading.energy_j == pytest.approx(80.0 * window.duration_s)
    assert reading.sample_rate_hz == pytest.approx(20.0, rel=0.3)
    assert not any(t.name == "lem-timeseries" for t in threading.enumerate()), "the meter's sampler stopped"


def test_counter_going_backwards_is_never_negative() -> None:
    gpu = SimulatedGpu(power_w=90.0)
    with simulated_gpus(gpu):
        meter = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None)
        meter.begin("alone")
        gpu.reset_energy_counter()
        alone = meter.end("alone")
        sampler = TimeseriesSampler(meter.gpus, [0], 20.0)
        sampler.start()
        meter.begin("sampled", sampler)
        time.sleep(0.3)
        gpu.reset_energy_counter()
        sampled = meter.end("sampled")
        sampler.stop()
    assert alone.domains[0].source == "unavailable" and alone.domains[0].energy_j is None
    assert "went backwards" in (alone.domains[0].note or ""), "says why, not 'no hardware counter'"
    assert alone.flags == ("energy_counter_backwards:gpu0",) == sampled.flags
    assert sampled.domains[0].source == "power_integration"
    assert sampled.domains[0].energy_j == pytest.approx(90.0 * sampled.duration_s)


# --- scenarios: full runs ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_counter_gpu_energy_within_one_percent_and_net_zero_at_idle_power(tmp_path: Path) -> None:
    gpu = SimulatedGpu(power_w=120.0, pids=[os.getpid()])
    with simulated_gpus(gpu):
        result = run(tmp_path / "job", "baseline.method=measure")
    assert result.status == "ok" and result.metrics is not None and result.quality is not None
    domain = gpu_domain(result)
    assert domain.source == "counter" and domain.energy_j is not None and domain.net_energy_j is not None
    assert domain.energy_j == pytest.approx(120.0 * result.metrics.duration_s, rel=0.01)
    assert domain.baseline_power_w == pytest.approx(120.0, rel=0.01)
    assert abs(domain.net_energy_j) <= 0.01 * domain.energy_j, "idle and loaded power are the same"
    assert result.environment["gpus"][0]["uuid"] == gpu.uuid
    assert result.quality.gpu_sharing == "exclusive" and result.quality.gpu_shared_with_other_processes is False


@pytest.mark.slow
@pytest.mark.parametrize("visible", ["1", "UUID"])
def test_only_the_visible_gpu_is_metered_and_named_by_uuid(
    visible: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = (SimulatedGpu(power_w=50.0), SimulatedGpu(power_w=200.0))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", gpus[1].uuid if visible == "UUID" else visible)
    with simulated_gpus(*gpus):
        result = run(tmp_path / "job")
    assert result.status == "ok" and result.metrics is not None and result.energy is not None
    assert [d.domain for d in result.energy.domains if d.domain.startswith("gpu")] == ["gpu0"]
    assert gpu_domain(result).energy_j == pytest.approx(200.0 * result.metrics.duration_s, rel=0.01)
    ((index, nvml_index, uuid),) = [(g["index"], g["nvml_index"], g["uuid"]) for g in result.environment["gpus"]]
    assert (index, nvml_index, uuid) == (0, 1, gpus[1].uuid)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == (gpus[1].uuid if visible == "UUID" else "1")


def window_s(job_dir: Path, gpu: SimulatedGpu, *overrides: str) -> float:
    """The measured window of one run beside `gpu`, seconds."""
    with simulated_gpus(gpu):
        result = run(job_dir, *overrides)
    assert result.metrics is not None
    return result.metrics.duration_s


@pytest.mark.slow
def test_pre_volta_gpu_integrated_and_labelled_without_slowing_the_window(tmp_path: Path) -> None:
    children = child_pids()
    for timeseries in ("true", "false"):
        with simulated_gpus(pascal(120.0)):
            result = run(
                tmp_path / f"pascal_{timeseries}", "baseline.method=measure", f"timeseries.enabled={timeseries}"
            )
        assert result.status == "ok" and result.metrics is not None and result.quality is not None
        assert result.energy is not None and result.energy.load is not None
        domain = gpu_domain(result)
        assert domain.source == "power_integration" and domain.energy_j is not None
        assert domain.energy_j == pytest.approx(120.0 * result.metrics.duration_s, rel=0.01)
        assert domain.baseline_power_w == pytest.approx(120.0, rel=0.01), "the idle baseline is not read low"
        assert [d.source for d in result.energy.load.domains if d.domain == "gpu0"] == ["power_integration"]
        assert result.quality.power_integration_rate_hz["gpu0"] > 5.0
        assert not child_pids() - children, "no power-polling process started"
    # Windows of the same work beside a GPU with a counter and one without, best of up to three back-to-back pairs:
    # other load on a shared machine slows a single window many times over; a spinning poller slows every one.
    ratios: list[float] = []
    while len(ratios) < 3 and not any(r <= 2.0 for r in ratios):
        pair = tmp_path / f"pair{len(ratios)}"
        counter_s = window_s(pair / "counter", SimulatedGpu(power_w=120.0))
        ratios.append(window_s(pair / "pascal", pascal(120.0)) / counter_s)
    assert min(ratios) <= 2.0, f"the pre-Volta window ran {min(ratios):.1f} times as long as the counter one"


@pytest.mark.slow
@pytest.mark.parametrize("who", ["stranger", "grandchild"])
def test_a_strangers_process_is_flagged_and_lems_own_grandchild_is_not(who: str, tmp_path: Path) -> None:
    child = subprocess.Popen(["sh", "-c", "sleep 120 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    try:
        gpu = SimulatedGpu(pids=[grandchild] if who == "grandchild" else [grandchild, os.getppid()])
        with simulated_gpus(gpu):
            result = run(tmp_path / "job")
    finally:
        psutil.Process(grandchild).terminate()
        child.wait(timeout=10)
    assert result.status == "ok" and result.quality is not None
    shared = who == "stranger"
    assert result.quality.gpu_sharing == ("shared" if shared else "exclusive")
    assert result.quality.gpu_shared_with_other_processes is shared
    assert ("gpu_shared" in result.quality.flags) is shared


@pytest.mark.slow
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # the sampler stops quietly
@pytest.mark.parametrize("kind", ["counter", "pre-volta"])
def test_gpu_that_stops_answering_mid_window_fails_naming_the_phase(kind: str, tmp_path: Path) -> None:
    gpu = SimulatedGpu() if kind == "counter" else pascal(60.0)
    job = tmp_path / "job"
    with (
        simulated_gpus(gpu),
        when_phase_starts("measure", after_s(0.3, lambda: setattr(gpu, "lost", True))),
        pytest.raises(LemError, match="GPU is lost"),
    ):
        run(job)
    result = read_result(job / "results.json")
    assert result.status == "failed" and result.error is not None and result.error.phase == "measure"
    assert "GPU is lost" in result.error.message and result.energy is None
    assert sorted(p.name for p in job.iterdir()) == ["results.json"], "no timeseries, no temporary file"


@pytest.mark.slow
def test_energy_counter_going_backwards_mid_window_is_flagged_never_negative(tmp_path: Path) -> None:
    gpu = SimulatedGpu(power_w=90.0)
    with simulated_gpus(gpu), when_phase_starts("measure", after_s(0.3, gpu.reset_energy_counter)):
        result = run(tmp_path / "job")
    assert result.status == "ok" and result.metrics is not None and result.quality is not None
    domain = gpu_domain(result)
    assert domain.energy_j is not None and domain.energy_j >= 0
    assert domain.source == "power_integration", "integrated from the window's timeseries instead"
    assert domain.energy_j == pytest.approx(90.0 * result.metrics.duration_s, rel=0.02)
    assert "energy_counter_backwards:gpu0" in result.quality.flags
