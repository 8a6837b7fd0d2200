"""Does measuring disturb the work? lem's measured phase against a bare transformers generate loop.

Same process, same thread count, same tiny model, same prompts, same static batches, fixed 32 new tokens.
Each round runs lem (timeseries at 10 Hz), lem (sampler off) and the bare loop, in an order rotated every round
so that no variant always runs first. Prints each round's wall time of the measured phase and the median ratios
lem/bare. Target: at most 1.03 with the sampler on.

`--simulated-gpu counter|pre-volta` runs every variant beside a simulated NVIDIA GPU (tests/zeus_seams.py: nvidia-ml-py
answers, Zeus's real NVML code reads) of that kind, and adds `zeus_window`: the bare loop inside a ZeusMonitor window
over that GPU, which is how lem metered before it gave Zeus only the GPUs with an energy counter (for a pre-Volta GPU
Zeus starts its PowerMonitor's pollers). Its ratio is the window's slowdown before; lem's ratios are the slowdown now.

    python scripts/bench_overhead.py [--rounds 6] [--prompts 128] [--batch-size 8] [--simulated-gpu pre-volta]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.config.store import compose_config
from lem.harness import prepare_prompts, run_experiment
from lem.model.resolve import cache_root, resolve_model

NEW_TOKENS = 32
TESTS = Path(__file__).resolve().parent.parent / "tests"


def bare_loop(
    model_path: str,
    prompts: list[str],
    batch_size: int,
    around: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
) -> tuple[float, float]:
    """The same work with nothing around it: load, warm up as lem does (3 single prompts), then tokenize and
    generate batch after batch (inside `around()`). Returns the timed part's (wall seconds, process CPU seconds)."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()

    def generate(batch: list[str]) -> None:
        inputs = tokenizer(batch, return_tensors="pt", padding=True)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        output[:, inputs["input_ids"].shape[1] :].tolist()

    for prompt in prompts[:3]:
        generate([prompt])
    with around():
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(prompts), batch_size):
            generate(prompts[i : i + batch_size])
        return time.perf_counter() - wall, time.process_time() - cpu


@contextlib.contextmanager
def zeus_window() -> Iterator[None]:
    """A ZeusMonitor window over every visible GPU, its PowerMonitor (if any) stopped afterwards."""
    from zeus.monitor import ZeusMonitor

    monitor = ZeusMonitor(cpu_indices=[])
    monitor.begin_window("bench", sync_execution=False)
    try:
        yield
    finally:
        monitor.end_window("bench", sync_execution=False)
        if monitor.power_monitor is not None:
            monitor.power_monitor.stop()


@contextlib.contextmanager
def simulated_gpu(kind: str | None) -> Iterator[None]:
    """One simulated GPU of `kind` (`counter`: Hopper; `pre-volta`: Pascal, no energy counter), or none."""
    if kind is None:
        yield
        return
    sys.path.insert(0, str(TESTS))
    import pynvml
    from zeus_seams import SimulatedGpu, simulated_gpus

    pascal = {"architecture": pynvml.NVML_DEVICE_ARCH_PASCAL, "compute_capability": (6, 0), "name": "Tesla P100"}
    with simulated_gpus(SimulatedGpu(power_w=150.0, **(pascal if kind == "pre-volta" else {}))):
        yield


def lem_window(overrides: list[str], job_dir: Path) -> tuple[float, float]:
    """lem's measured window for one full experiment with `overrides`: (wall seconds, process CPU seconds)."""
    config = compose_config(*overrides)
    result = run_experiment(config, validate(config, probe_machine()), job_dir)
    assert result.metrics is not None and result.quality is not None
    return result.metrics.duration_s, result.quality.window_process_cpu_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--simulated-gpu", choices=("counter", "pre-volta"), default=None)
    args = parser.parse_args()
    with simulated_gpu(args.simulated_gpu):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Every round of every variant, then the ratios."""
    common = [
        f"num_input_prompts={args.prompts}",
        f"max_output_tokens={NEW_TOKENS}",
        "fixed_length=true",
        f"backend.batch_size={args.batch_size}",
        "backend.batching_strategy=static",
        "warmup.mode=fixed",
        "warmup.count=3",
        "baseline.method=off",
    ]
    config = compose_config(*common)
    model_path = resolve_model(config.model, cache_root(config.cache_dir))
    prompts = prepare_prompts(config, model_path)
    print(
        f"torch threads {torch.get_num_threads()}, {args.prompts} prompts, batch {args.batch_size}, "
        f"{NEW_TOKENS} new tokens, model {model_path}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, Callable[[], tuple[float, float]]] = {
            "lem_sampler_10hz": lambda: lem_window([*common, "timeseries.sample_rate_hz=10"], Path(tmp)),
            "lem_no_sampler": lambda: lem_window([*common, "timeseries.enabled=false"], Path(tmp)),
            "bare": lambda: bare_loop(model_path, prompts, args.batch_size),
        }
        if args.simulated_gpu is not None:
            variants["zeus_window"] = lambda: bare_loop(model_path, prompts, args.batch_size, zeus_window)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        names = list(variants)
        for round_index in range(args.rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in order:
                times[name].append(variants[name]())
            print(
                f"round {round_index + 1} ({' > '.join(order)}): "
                + ", ".join(f"{k} {v[-1][0]:.3f} s wall / {v[-1][1]:.3f} s cpu" for k, v in times.items())
            )
    for which, label in ((0, "wall time"), (1, "process CPU time")):
        bare = [t[which] for t in times["bare"]]
        for key in (name for name in times if name != "bare"):
            mine = [t[which] for t in times[key]]
            ratios = [a / b for a, b in zip(mine, bare, strict=True)]
            print(
                f"{label}: {key}/bare median of per-round ratios {statistics.median(ratios):.3f}, "
                f"ratio of medians {statistics.median(mine) / statistics.median(bare):.3f} (target <= 1.03)"
            )


if __name__ == "__main__":
    main()
