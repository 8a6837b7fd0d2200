"""Validation of the `scenario` group (its field bounds are checked with every other field by lem.config.rules), and
of `energy.phases=split`, which needs an offline run whose repeated prefill passes no cache can serve."""

from __future__ import annotations

import math
from collections.abc import Iterable

from lem.config.findings import Finding, Rule
from lem.config.machine import MachineFacts
from lem.config.schema import SERVING_BACKENDS, ExperimentConfig, ServingScenario


def _serving_backend(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    if config.scenario.name == "serving" and config.backend.name not in SERVING_BACKENDS:
        supported = ", ".join(f"backend={name}" for name in SERVING_BACKENDS)
        yield Finding(
            "SCENARIO_UNSUPPORTED",
            "error",
            "scenario",
            f"'serving' is not available for backend={config.backend.name} (it has no server lem can start); "
            f"use it with {supported}, or scenario=offline",
        )


def _window_fits(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    scenario = config.scenario
    if not isinstance(scenario, ServingScenario):
        return
    if scenario.num_requests <= 2 * scenario.ramp_up_requests:
        yield Finding(
            "SERVING_WINDOW_EMPTY",
            "error",
            "scenario.num_requests",
            f"{scenario.num_requests} leaves no steady-state window after a ramp-up and a drain of "
            f"scenario.ramp_up_requests={scenario.ramp_up_requests} each; raise num_requests above "
            f"{2 * scenario.ramp_up_requests} or lower ramp_up_requests",
        )
    if math.isinf(scenario.request_rate) and scenario.max_concurrency is None:
        yield Finding(
            "SERVING_BURST",
            "info",
            "scenario.request_rate",
            "inf without scenario.max_concurrency sends every request at once: the window closes when all but "
            f"the last {scenario.ramp_up_requests} requests have completed (there is no arrival process to follow)",
        )


def _tokens_for_tpot(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    if config.scenario.name == "serving" and config.max_output_tokens < 2:
        yield Finding(
            "SERVING_NO_TPOT",
            "warning",
            "max_output_tokens",
            f"{config.max_output_tokens}: a request of one token has no time per output token, so only "
            "scenario.ttft_slo_s decides goodput; raise max_output_tokens to 2 or more",
        )


#: Backend → its field that turns the server's prefix (KV-block) reuse on.
PREFIX_REUSE_FIELDS = {"vllm": "enable_prefix_caching", "tensorrt": "enable_kv_cache_reuse"}


def _repeated_prompts(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    scenario = config.scenario
    if not isinstance(scenario, ServingScenario) or scenario.num_requests <= config.num_input_prompts:
        return
    reuse_field = PREFIX_REUSE_FIELDS.get(config.backend.name)
    if reuse_field is None or getattr(config.backend, reuse_field) is False:
        return
    yield Finding(
        "SERVING_PROMPTS_REPEAT",
        "warning",
        "scenario.num_requests",
        f"{scenario.num_requests} requests cycle through num_input_prompts={config.num_input_prompts} prompts, and "
        "the server's prefix cache answers repeats from memory; raise num_input_prompts to at least "
        f"num_requests, or set backend.{reuse_field}=false",
    )


def _trtllm_serve(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    if config.scenario.name != "serving" or config.backend.name != "tensorrt":
        return
    yield Finding(
        "TRTLLM_SERVE_UNTESTED",
        "warning",
        "scenario",
        "'serving' with backend=tensorrt runs trtllm-serve, which lem has tested against its recorded TensorRT-LLM "
        "1.2.1 interface only, never on hardware (docs/serving.md); check the installed one first with python "
        "scripts/check_trtllm_contract.py --serve",
    )
    yield Finding(
        "TRTLLM_SERVE_BUILDS_ENGINE",
        "info",
        "scenario",
        "trtllm-serve builds the TensorRT engine from the checkpoint at every start, inside the metered load phase; "
        "backend.engine_cache_dir and backend.force_rebuild apply to scenario=offline only",
    )


def _phases_split(config: ExperimentConfig, facts: MachineFacts) -> Iterable[Finding]:
    if config.energy.phases != "split":
        return
    if config.scenario.name == "serving":
        yield Finding(
            "PHASES_SPLIT_OFFLINE_ONLY",
            "error",
            "energy.phases",
            "'split' is not available with scenario=serving (a server's requests overlap, so no window holds only "
            "prefill); use energy.phases=total, or scenario=offline",
        )
    if getattr(config.backend, "enable_kv_cache_reuse", False):
        yield Finding(
            "PHASES_SPLIT_CACHED",
            "error",
            "energy.phases",
            "'split' with backend.enable_kv_cache_reuse=true: the repeated prefill passes would take their prompts "
            "from TensorRT-LLM's KV block cache; set backend.enable_kv_cache_reuse=false, or energy.phases=total",
        )
    if config.max_output_tokens < 2:
        yield Finding(
            "PHASES_SPLIT_NO_DECODE",
            "warning",
            "max_output_tokens",
            f"{config.max_output_tokens}: with energy.phases=split a one-token request has no decode step, so there is "
            "no decode energy per output token; raise max_output_tokens to 2 or more",
        )


RULES: tuple[Rule, ...] = (
    _serving_backend,
    _window_fits,
    _tokens_for_tpot,
    _repeated_prompts,
    _trtllm_serve,
    _phases_split,
)
