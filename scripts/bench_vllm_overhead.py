"""What does lem's vLLM backend cost? Its generate (step-driven, DELTA outputs, own timestamps) against a bare
`LLM.generate` (FINAL_ONLY outputs) on the very same engine.

One process, one engine built once by lem's backend (so both paths run with identical engine arguments and KV
cache), the same prompts and sampling settings (fixed length, greedy), each call starting from an empty prefix
cache. A second engine in the same process is no fair stand-in on CPU: vLLM sizes its KV cache from the memory the
process already uses, and the two engines were seen to slow each other down severalfold. Rounds alternate lem, bare,
lem, bare, ... (the first of each pair swaps every round). Prints each call's output-token throughput per wall-clock
second and per CPU second of this process, and lem/bare as the ratio of the medians and as the median of per-round
ratios (the steadier figure on a shared host, where both calls of a round see the same load). Target: at least 0.97.

    python scripts/bench_vllm_overhead.py [--rounds 10] [--prompts 128] [--new-tokens 32] [--max-num-seqs 64]

On a small shared CPU host, run it with OMP_NUM_THREADS=1: with two OpenMP threads, vLLM's CPU engine slowed down up
to twentyfold whenever another process took a core, which buries the difference being measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch
import vllm
from vllm import SamplingParams

from lem.backends.base import create_backend
from lem.backends.vllm.translate import sampling_kwargs
from lem.config.store import compose_config
from lem.harness import prepare_prompts
from lem.model.resolve import cache_root, resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--max-num-seqs", type=int, default=64)
    args = parser.parse_args()
    overrides = [
        "backend=vllm",
        f"num_input_prompts={args.prompts}",
        f"max_output_tokens={args.new_tokens}",
        "fixed_length=true",
        "decoder.preset=deterministic",
        f"backend.max_num_seqs={args.max_num_seqs}",
    ]
    config = compose_config(*overrides)
    model_path = resolve_model(config.model, cache_root(config.cache_dir))
    prompts = prepare_prompts(config, model_path)

    backend = create_backend(config, model_path, [])
    started = time.perf_counter()
    info = backend.load()
    print(f"engine built by lem in {time.perf_counter() - started:.1f} s (vLLM {vllm.__version__})")
    bare_llm = backend.llm
    params = SamplingParams(**sampling_kwargs(config))
    print(f"config: overrides {overrides}, {len(prompts)} prompts, model {model_path}")
    print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"engine args: {json.dumps(info.settings['engine_args'], sort_keys=True)}")
    print(f"sampling params (both): {sampling_kwargs(config)}")
    print("lem adds output_kind=DELTA, stream_interval=max_tokens; LLM.generate sets output_kind=FINAL_ONLY")

    def lem_call() -> int:
        return sum(r.output_tokens for r in backend.generate(prompts).records)

    def bare_call() -> int:
        bare_llm.reset_prefix_cache()  # as lem's generate does: both paths prefill every prompt
        outputs = bare_llm.generate(prompts, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    variants: dict[str, Callable[[], int]] = {"lem": lem_call, "bare": bare_call}
    lem_ids = [
        r.output_token_ids for r in backend.generate(prompts).records
    ]  # unmeasured: warms both, checks same work
    bare_ids = [tuple(o.outputs[0].token_ids) for o in bare_llm.generate(prompts, params, use_tqdm=False)]
    print(f"same output token ids from both paths: {lem_ids == bare_ids}")
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_index in range(args.rounds):
            order = ["lem", "bare"] if round_index % 2 == 0 else ["bare", "lem"]
            for name in order:
                wall_started, cpu_started = time.perf_counter(), time.process_time()
                tokens = variants[name]()
                wall[name].append(tokens / (time.perf_counter() - wall_started))
                cpu[name].append(tokens / (time.process_time() - cpu_started))
            print(
                f"round {round_index + 1} ({' > '.join(order)}): "
                + ", ".join(f"{k} {wall[k][-1]:.0f} tok/s ({cpu[k][-1]:.0f} tok/CPU-s)" for k in variants)
            )
    finally:
        backend.close()
    for label, figures in (("per wall-clock second", wall), ("per CPU second", cpu)):
        lem, bare = statistics.median(figures["lem"]), statistics.median(figures["bare"])
        paired = statistics.median(a / b for a, b in zip(figures["lem"], figures["bare"], strict=True))
        print(
            f"throughput {label}: median lem {lem:.0f}, bare {bare:.0f} tokens; lem/bare: ratio of medians "
            f"{lem / bare:.3f}, median of per-round ratios {paired:.3f}"
        )
    print("target: lem/bare >= 0.97")


if __name__ == "__main__":
    main()
