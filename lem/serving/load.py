"""The load generator: streaming requests to the server's /v1/completions, on a schedule, from lem's own process.

Client: aiohttp (asyncio). Chosen over httpx because its C-accelerated HTTP parser costs less CPU per streamed chunk
on the machine that also runs the server (2 cores here), it is the client `vllm bench serve` uses (so lem's
latencies are taken the way vLLM's own benchmark takes them), and its UnixConnector speaks to a server's Unix socket
directly (a TCP server, such as trtllm-serve, through its TCPConnector on 127.0.0.1: lem.serving.server.Endpoint).

Arrivals: Poisson with a fixed seed (exponential gaps of mean 1/rate from numpy's default_rng(seed); the first at 0),
or all at once for rate = inf; `max_concurrency` requests in flight at most (a request waits for a slot after its
planned time: that wait is part of its lag). Fixed-length mode sends min_tokens = max_tokens and ignore_eos, as the
offline backends do. Token counts come from the server's usage fields (`stream_options.include_usage`, and
`continuous_usage_stats` for the count in every chunk): never from text.

Per request: planned and actual send time (their difference is the lag behind the schedule), first-token time, the
arrival time of every token (a chunk of n tokens: its arrival n times), end time, input and output tokens. Times are
seconds from the run's origin (time.perf_counter() when the schedule starts).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lem.serving.server import Endpoint
from lem.serving.window import SteadyStateWindow

COMPLETIONS_PATH = "/v1/completions"
#: Body keys of lem's sampling arguments that the completions API does not take (the server detokenizes anyway).
_NOT_REQUEST_KEYS = ("detokenize",)
DRAIN_MODES = ("wait", "cancel")


class RequestFailed(Exception):
    """A request got no complete answer: an HTTP error, a broken stream, a timeout, or no usage counts."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"request {index}: {message}")
        self.index = index


@dataclass
class RequestTiming:
    """One request of a load run; times in seconds from the run's origin (None: did not happen)."""

    index: int
    #: Which prompt it sent (requests cycle through the prompts).
    prompt_index: int
    planned_s: float
    sent_s: float | None = None
    first_token_s: float | None = None
    token_arrivals_s: list[float] = field(default_factory=list)
    end_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: Cancelled after the window closed (scenario.drain=cancel): not complete, not counted.
    cancelled: bool = False

    @property
    def lag_s(self) -> float | None:
        """How late it was sent against its planned time."""
        return None if self.sent_s is None else self.sent_s - self.planned_s

    @property
    def ttft_s(self) -> float | None:
        """Time to first token, from its send."""
        return None if self.first_token_s is None or self.sent_s is None else self.first_token_s - self.sent_s

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: (end - first token) / (output tokens - 1)."""
        if self.end_s is None or self.first_token_s is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.end_s - self.first_token_s) / (self.output_tokens - 1)

    @property
    def e2e_s(self) -> float | None:
        """End-to-end latency, from its send to its last token."""
        return None if self.end_s is None or self.sent_s is None else self.end_s - self.sent_s

    def inter_token_s(self) -> list[float]:
        """Gaps between consecutive token arrivals; a chunk of n tokens spreads its gap evenly over its n tokens."""
        chunks: list[tuple[float, int]] = []
        for t in self.token_arrivals_s:
            if chunks and chunks[-1][0] == t:
                chunks[-1] = (t, chunks[-1][1] + 1)
            else:
                chunks.append((t, 1))
        gaps = []
        for (previous, _), (t, n) in itertools.pairwise(chunks):
            gaps += [(t - previous) / n] * n
        return gaps

    @property
    def complete(self) -> bool:
        return self.end_s is not None and not self.cancelled


def planned_send_times_s(request_rate_per_s: float, num_requests: int, seed: int) -> list[float]:
    """Poisson arrivals at `request_rate_per_s` (the first at 0, seeded), or all at 0 for an infinite rate."""
    if math.isinf(request_rate_per_s):
        return [0.0] * num_requests
    gaps = np.random.default_rng(seed).exponential(1.0 / request_rate_per_s, size=num_requests - 1)
    return [0.0, *(float(t) for t in np.cumsum(gaps))]


def completion_body(sampling: dict[str, Any], prompt: str) -> dict[str, Any]:
    """A streaming /v1/completions body: lem's sampling arguments (the launch's: lem.backends.vllm.translate's
    sampling_kwargs, or lem.serving.trtllm's completion_sampling, with the served model's name), usage in every
    chunk."""
    body = {k: v for k, v in sampling.items() if k not in _NOT_REQUEST_KEYS}
    body.update(prompt=prompt, stream=True, stream_options={"include_usage": True, "continuous_usage_stats": True})
    return body


async def _stream(session: Any, url: str, body: dict[str, Any], timing: RequestTiming, origin: float) -> None:
    """Send one request to `url` and read its stream into `timing` (first token, every token, usage, end)."""
    seen = 0
    async with session.post(url, json=body) as response:
        if response.status != 200:
            text = " ".join((await response.text()).split())[:300]
            raise RequestFailed(timing.index, f"HTTP {response.status}: {text}")
        async for raw in response.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            now = time.perf_counter() - origin
            if data == b"[DONE]":
                timing.end_s = now
                break
            chunk = json.loads(data)
            usage = chunk.get("usage")
            if not usage:
                raise RequestFailed(timing.index, "a chunk without usage counts (the server ignored stream_options)")
            new = usage["completion_tokens"] - seen
            if chunk.get("choices") and new > 0:
                timing.first_token_s = timing.first_token_s if timing.first_token_s is not None else now
                timing.token_arrivals_s += [now] * new
                seen += new
            timing.input_tokens, timing.output_tokens = usage["prompt_tokens"], usage["completion_tokens"]
    if timing.end_s is None:
        raise RequestFailed(timing.index, "the stream ended before [DONE]")


@dataclass
class LoadRun:
    """A finished load run: every request's timing, in request order, and the window it ran."""

    requests: list[RequestTiming]
    window: SteadyStateWindow
    duration_s: float


async def _run(
    endpoint: Endpoint,
    bodies: Sequence[dict[str, Any]],
    timings: list[RequestTiming],
    max_concurrency: int | None,
    window: SteadyStateWindow,
    drain: str,
    request_timeout_s: float,
    on_completed: Callable[[], None],
) -> float:
    import aiohttp

    slots = asyncio.Semaphore(max_concurrency or len(bodies))
    draining = False
    tasks: list[asyncio.Task[None]] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30.0, sock_read=request_timeout_s)
    url = endpoint.base_url + COMPLETIONS_PATH
    async with aiohttp.ClientSession(connector=endpoint.connector(limit=0), timeout=timeout) as session:
        origin = time.perf_counter()

        async def one(body: dict[str, Any], timing: RequestTiming) -> None:
            await asyncio.sleep(max(0.0, timing.planned_s - (time.perf_counter() - origin)))
            try:
                async with slots:
                    timing.sent_s = time.perf_counter() - origin
                    window.on_sent(timing.sent_s)
                    if drained():  # the window closed at this send: this request belongs to the drain
                        timing.cancelled = True
                        return
                    await _stream(session, url, body, timing, origin)
            except asyncio.CancelledError:
                if not draining:
                    raise
                timing.cancelled = True
                return
            except (aiohttp.ClientError, TimeoutError, ValueError) as ex:
                raise RequestFailed(timing.index, f"{type(ex).__name__}: {ex}") from ex
            assert timing.end_s is not None
            window.on_completed(timing.end_s)
            on_completed()
            drained()

        def drained() -> bool:
            """With drain="cancel", once the window has closed: cancel every other request (True)."""
            nonlocal draining
            if drain != "cancel" or window.closed_s is None:
                return False
            draining = True
            for task in tasks:
                if not task.done() and task is not asyncio.current_task():
                    task.cancel()
            return True

        tasks += [asyncio.create_task(one(b, t)) for b, t in zip(bodies, timings, strict=True)]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [task for task in done if not task.cancelled() and task.exception() is not None]
        if failed:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise failed[0].exception()  # type: ignore[misc]
        return time.perf_counter() - origin


def run_load(
    endpoint: Endpoint,
    prompts: Sequence[str],
    sampling: dict[str, Any],
    planned_s: Sequence[float],
    window: SteadyStateWindow,
    *,
    max_concurrency: int | None = None,
    drain: str = "wait",
    request_timeout_s: float = 300.0,
    on_completed: Callable[[], None] = lambda: None,
) -> LoadRun:
    """Send request i (prompt `prompts[i % len(prompts)]`) at `planned_s[i]`, feeding `window` every send and
    completion.

    `drain="cancel"` cancels the requests still in flight once the window has closed (they are marked cancelled);
    "wait" lets them finish. The first failed request ends the run: RequestFailed (the others are cancelled).
    """
    if drain not in DRAIN_MODES:
        raise ValueError(f"drain={drain!r}: use one of {DRAIN_MODES}")
    timings = [RequestTiming(i, i % len(prompts), t) for i, t in enumerate(planned_s)]
    bodies = [completion_body(sampling, prompts[timing.prompt_index]) for timing in timings]
    duration_s = asyncio.run(
        _run(endpoint, bodies, timings, max_concurrency, window, drain, request_timeout_s, on_completed)
    )
    return LoadRun(timings, window, duration_s)


async def _sequential(
    endpoint: Endpoint, bodies: Sequence[dict[str, Any]], request_timeout_s: float
) -> list[RequestTiming]:
    import aiohttp

    timings = []
    url = endpoint.base_url + COMPLETIONS_PATH
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30.0, sock_read=request_timeout_s)
    async with aiohttp.ClientSession(connector=endpoint.connector(), timeout=timeout) as session:
        origin = time.perf_counter()
        for index, body in enumerate(bodies):
            timing = RequestTiming(index, index, time.perf_counter() - origin)
            timing.sent_s = timing.planned_s
            try:
                await _stream(session, url, body, timing, origin)
            except (aiohttp.ClientError, TimeoutError, ValueError) as ex:
                raise RequestFailed(index, f"{type(ex).__name__}: {ex}") from ex
            timings.append(timing)
    return timings


def send_sequentially(
    endpoint: Endpoint,
    prompts: Sequence[str],
    sampling: dict[str, Any],
    *,
    extra_body: dict[str, Any] | None = None,
    request_timeout_s: float = 300.0,
) -> list[RequestTiming]:
    """One streaming request per prompt, each sent when the previous one has ended (warm-up); `extra_body` is added
    to every request. RequestFailed on the first failure."""
    bodies = [{**completion_body(sampling, prompt), **(extra_body or {})} for prompt in prompts]
    return asyncio.run(_sequential(endpoint, bodies, request_timeout_s))
