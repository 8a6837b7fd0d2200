"""The steady-state window of a serving run, decided while the load runs (so that the meter opens and closes on it).

The rule (recorded with every result as WINDOW_RULE):
- it opens when the first `ramp_up_requests` requests have completed: the server has filled up from empty;
- it closes when the last request is sent, where that happens after it opened: from then on no request arrives and
  the server drains. Where every request was sent before it opened (request_rate=inf without a concurrency limit,
  or a schedule shorter than the ramp-up), it closes instead when all but the last `ramp_up_requests` requests have
  completed, the drain's mirror image of the ramp-up.
Requests in flight at either edge did part of their work inside; in a steady state those at the start and those at
the end balance, which is why the figures are taken only over a steady state.
"""

from __future__ import annotations

from collections.abc import Callable

WINDOW_RULE = (
    "opens at the completion of the first {k} requests; closes at the send of the last request, or, where every "
    "request was sent before it opened, at the completion of all but the last {k}"
)
CLOSED_AT_LAST_SEND = "last_send"
CLOSED_AT_COMPLETION = "completion"


class SteadyStateWindow:
    """Counts sends and completions as they happen and calls `on_open(t)` and `on_close(t)` (t: seconds from the
    load's origin) at the window's edges. Needs num_requests > 2 x ramp_up_requests (validated with the config)."""

    def __init__(
        self,
        num_requests: int,
        ramp_up_requests: int,
        on_open: Callable[[float], None] = lambda t: None,
        on_close: Callable[[float], None] = lambda t: None,
    ) -> None:
        if ramp_up_requests < 1 or num_requests <= 2 * ramp_up_requests:
            raise ValueError(f"num_requests={num_requests} must exceed 2 x ramp_up_requests={ramp_up_requests} >= 2")
        self.num_requests = num_requests
        self.ramp_up_requests = ramp_up_requests
        self._on_open, self._on_close = on_open, on_close
        self.sent = 0
        self.completed = 0
        self.opened_s: float | None = None
        self.closed_s: float | None = None
        #: How it closes (or closed): CLOSED_AT_LAST_SEND or CLOSED_AT_COMPLETION; None before it opens.
        self.closes_at: str | None = None

    @property
    def rule(self) -> str:
        return WINDOW_RULE.format(k=self.ramp_up_requests)

    @property
    def is_open(self) -> bool:
        return self.opened_s is not None and self.closed_s is None

    def _close(self, t: float) -> None:
        self.closed_s = t
        self._on_close(t)

    def on_sent(self, t: float) -> None:
        """A request was sent at `t`."""
        self.sent += 1
        if self.is_open and self.closes_at == CLOSED_AT_LAST_SEND and self.sent == self.num_requests:
            self._close(t)

    def on_completed(self, t: float) -> None:
        """A request completed (its last token arrived) at `t`."""
        self.completed += 1
        if self.opened_s is None and self.completed == self.ramp_up_requests:
            self.opened_s = t
            self.closes_at = CLOSED_AT_COMPLETION if self.sent == self.num_requests else CLOSED_AT_LAST_SEND
            self._on_open(t)
        elif (
            self.is_open
            and self.closes_at == CLOSED_AT_COMPLETION
            and self.completed == self.num_requests - self.ramp_up_requests
        ):
            self._close(t)
