"""Does measuring disturb the work? lem's measured phase against a bare transformers generate loop.

Same process, same thread count, same tiny model, same prompts, same static batches, fixed 32 new tokens.
Each round runs lem (timeseries at 10 Hz), lem (sampler off) and the bare loop, in an order rotated every round
so that no variant always runs first. Prints each round's wall time of the measured phase and the median ratios
lem/bare. Target: at most 1.03 with the sampler on.

    python scripts/bench_overhead.py [--rounds 6] [--prompts 128] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lem.config.machine import probe_machine
from lem.config.rules import validate
from lem.config.store import compose_config
from lem.harness import prepare_prompts, run_experiment
from lem.model.resolve import cache_root, resolve_model

NEW_TOKENS = 32


def bare_loop(model_path: str, prompts: list[str], batch_size: int) -> tuple[float, float]:
    """The same work with nothing around it: load, warm up as lem does (3 single prompts), then tokenize and
    generate batch after batch. Returns the timed part's (wall seconds, process CPU seconds)."""
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
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(prompts), batch_size):
        generate(prompts[i : i + batch_size])
    return time.perf_counter() - wall, time.process_time() - cpu


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
    args = parser.parse_args()
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
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        names = list(variants)
        for round_index in range(args.rounds):
            order = names[round_index % 3 :] + names[: round_index % 3]
            for name in order:
                times[name].append(variants[name]())
            print(
                f"round {round_index + 1} ({' > '.join(order)}): "
                + ", ".join(f"{k} {v[-1][0]:.3f} s wall / {v[-1][1]:.3f} s cpu" for k, v in times.items())
            )
    for which, label in ((0, "wall time"), (1, "process CPU time")):
        bare = [t[which] for t in times["bare"]]
        for key in ("lem_sampler_10hz", "lem_no_sampler"):
            mine = [t[which] for t in times[key]]
            ratios = [a / b for a, b in zip(mine, bare, strict=True)]
            print(
                f"{label}: {key}/bare median of per-round ratios {statistics.median(ratios):.3f}, "
                f"ratio of medians {statistics.median(mine) / statistics.median(bare):.3f} (target <= 1.03)"
            )


if __name__ == "__main__":
    main()
