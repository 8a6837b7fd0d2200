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


def bare_loop(model_path: str, prompts: list[str], batch_size: int) -> float:
    """The same work with nothing around it: tokenize and generate batch after batch; returns seconds."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    started = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        inputs = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        output[:, inputs["input_ids"].shape[1] :].tolist()
    return time.perf_counter() - started


def lem_window(overrides: list[str], job_dir: Path) -> float:
    """lem's measured window (seconds) for one full experiment with `overrides`."""
    config = compose_config(*overrides)
    result = run_experiment(config, validate(config, probe_machine()), job_dir)
    assert result.metrics is not None
    return result.metrics.duration_s


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
    bare_loop(model_path, prompts[: args.batch_size], args.batch_size)  # warm the bare path once
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, Callable[[], float]] = {
            "lem_sampler_10hz": lambda: lem_window([*common, "timeseries.sample_rate_hz=10"], Path(tmp)),
            "lem_no_sampler": lambda: lem_window([*common, "timeseries.enabled=false"], Path(tmp)),
            "bare": lambda: bare_loop(model_path, prompts, args.batch_size),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_index in range(args.rounds):
            order = names[round_index % 3 :] + names[: round_index % 3]
            for name in order:
                times[name].append(variants[name]())
            print(
                f"round {round_index + 1} ({' > '.join(order)}): "
                + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items())
            )
    bare = statistics.median(times["bare"])
    for key in ("lem_sampler_10hz", "lem_no_sampler"):
        ratios = [a / b for a, b in zip(times[key], times["bare"], strict=True)]
        print(
            f"{key}/bare: median of per-round ratios {statistics.median(ratios):.3f}, "
            f"ratio of medians {statistics.median(times[key]) / bare:.3f} (target <= 1.03)"
        )


if __name__ == "__main__":
    main()
