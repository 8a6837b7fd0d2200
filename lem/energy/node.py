"""Node power from the BMC: `ipmitool dcmi power reading`, sampled about once a second by a daemon thread.

The whole node's input power (GPUs, CPUs, memory, fans, disks, power-supply losses) as the BMC reports it, in watts.
Each call to ipmitool has a timeout, so a BMC that hangs ends the sampling with an error instead of hanging the run.
The samples integrate to energy between two `time.time()` instants (lem.energy.integrate), labelled
`power_integration`. The node includes the metered domains: its figure is kept apart from them, never summed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from lem.energy.integrate import achieved_rate_hz, interval_energies_j

#: The command run for every sample; also the sensor named in results.
COMMAND = ("ipmitool", "dcmi", "power", "reading")
SENSOR = " ".join(COMMAND)
#: Seconds one ipmitool call may take (a BMC answers in well under a second; a hung one is given up on).
CALL_TIMEOUT_S = 5.0
#: Seconds between samples: BMCs update their reading about once a second.
SAMPLE_INTERVAL_S = 1.0

_POWER = re.compile(r"Instantaneous power reading:\s*(\d+)\s*Watts")
_STATE = re.compile(r"Power reading state is:\s*(activated|deactivated)")


class NodePowerError(Exception):
    """ipmitool could not give a node power reading; the message says why in one line."""


@dataclass(frozen=True)
class NodePowerReading:
    """One `ipmitool dcmi power reading`: instantaneous power (W) and whether the BMC's power reading is activated."""

    power_w: float
    activated: bool


def parse_power_reading(text: str) -> NodePowerReading:
    """The instantaneous power and state from ipmitool's output; NodePowerError where either line is missing."""
    power, state = _POWER.search(text), _STATE.search(text)
    if power is None or state is None:
        first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
        raise NodePowerError(f"`{SENSOR}` printed no instantaneous power reading and state ({first!r})")
    return NodePowerReading(float(power.group(1)), state.group(1) == "activated")


def read_node_power(timeout_s: float = CALL_TIMEOUT_S) -> NodePowerReading:
    """Run ipmitool once; NodePowerError (one line) where it is missing, fails, times out or prints no reading."""
    try:
        done = subprocess.run(COMMAND, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as ex:
        raise NodePowerError("ipmitool is not installed (not on PATH)") from ex
    except PermissionError as ex:
        raise NodePowerError(f"ipmitool cannot be run: {ex}") from ex
    except subprocess.TimeoutExpired as ex:
        raise NodePowerError(f"`{SENSOR}` did not answer within {timeout_s:g} s (timeout)") from ex
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split()) or "no output"
        raise NodePowerError(f"`{SENSOR}` exited with code {done.returncode}: {message[:200]}")
    return parse_power_reading(done.stdout)


def probe_node_power(mode: str, timeout_s: float = CALL_TIMEOUT_S) -> tuple[bool, str | None]:
    """Whether node power can be sampled for `energy.node=mode`, and why not: (False, None) for 'off'; for 'ipmi' and
    'auto', one reading that must come back activated within `timeout_s`."""
    if mode == "off":
        return False, None
    if shutil.which(COMMAND[0]) is None:
        return False, "ipmitool is not installed (not on PATH)"
    try:
        reading = read_node_power(timeout_s)
    except NodePowerError as ex:
        return False, str(ex)
    if not reading.activated:
        return False, f"`{SENSOR}` reports the power reading state as deactivated (the BMC does not measure power)"
    return True, None


class NodePowerSampler:
    """Calls ipmitool every `interval_s` seconds in a daemon thread between `start()` and `stop()`.

    A call that fails, times out or reads deactivated ends the sampling; `error` says why. Samples are (`time.time()`
    at the call's midpoint, watts)."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lem-node-power", daemon=True)
        #: Why sampling stopped early, or None.
        self.error: NodePowerError | None = None

    def _sample(self) -> bool:
        """Take one reading; on a failure, keep the error and say False."""
        before = time.time()
        try:
            reading = read_node_power(self._timeout_s)
            if not reading.activated:
                raise NodePowerError(f"`{SENSOR}` reports the power reading state as deactivated")
        except NodePowerError as ex:
            self.error = ex
            return False
        self._samples.append(((before + time.time()) / 2.0, reading.power_w))
        return True

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and self._sample():
            next_at = max(next_at + self._interval_s, time.monotonic())  # a slow call delays, never bunches, the next
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> NodePowerSampler:
        """Start sampling (first reading immediately); returns self."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop sampling, waiting at most for the call in flight (`timeout_s`). Closing again does nothing."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def stop(self) -> None:
        """Stop sampling and take one last reading, so that an instant just before is covered (never raises: see
        `error`)."""
        running = not self._stop.is_set()
        self.close()
        if running and self.error is None:
            self._sample()

    def _series(self) -> tuple[list[float], list[float]]:
        samples = list(self._samples)
        return [t for t, _ in samples], [w for _, w in samples]

    def energy_j(self, start_s: float, end_s: float) -> float | None:
        """Node energy between two `time.time()` instants, joules (lem.energy.integrate); None without samples."""
        times_s, power_w = self._series()
        return float(interval_energies_j(times_s, power_w, [start_s, end_s])[0]) if times_s else None

    def mean_power_w(self, start_s: float, end_s: float) -> float | None:
        """Mean node power between two instants (energy / time), watts; None without samples or for an empty span."""
        energy_j = self.energy_j(start_s, end_s)
        return None if energy_j is None or end_s <= start_s else energy_j / (end_s - start_s)

    def samples_between(self, start_s: float, end_s: float) -> int:
        """Readings taken between the two instants."""
        return sum(start_s <= t <= end_s for t in self._series()[0])

    def achieved_rate_hz(self) -> float | None:
        """Readings per second over all samples; None with fewer than two."""
        return achieved_rate_hz(self._series()[0])
