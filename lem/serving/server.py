"""The server child process: started in a process group of its own, logged, health-checked, and always stopped.

Where the server can listen on a Unix socket (vLLM's `--uds`), lem talks to it over one in a fresh private folder: no
other process can take that address between lem choosing it and the server binding it. Where it takes only a TCP
host and port (trtllm-serve), the child picks a free port on 127.0.0.1 after its imports, an instant before the server
binds it, and writes it into the private folder (`port_path`); the remaining race (another program binding that port
in that instant) cannot go unnoticed: the server then fails to bind and exits, or, should a stranger answer /health
there, `wait_healthy` refuses it, because no process of the server's listens on that port. The child arms a
parent-death signal for itself and every process it forks (lem.serving.child), so nothing outlives lem even when lem
is SIGKILLed; `stop` ends the whole process group and every process of the server's tree found before the signal
(SIGTERM, then SIGKILL after a grace period) and waits until none of them is left.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from lem.errors import LemError
from lem.serving.child import LOOPBACK, PARENT_PID_ENV

#: Lines of the server's log quoted in an error.
LOG_TAIL_LINES = 6
#: Characters of those lines at most (the error stays one readable line).
LOG_TAIL_CHARS = 600
HEALTH_POLL_S = 0.5
#: Seconds the server gets after SIGTERM (vLLM's engine core takes up to about 10 s to follow) before SIGKILL.
STOP_GRACE_S = 20.0
#: How a server is reached: a Unix socket, or a TCP port on LOOPBACK.
TRANSPORTS = ("unix", "tcp")


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket (the standard library has the client, not the transport)."""

    def __init__(self, path: str, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


@dataclass(frozen=True)
class Endpoint:
    """Where a server answers: a Unix socket (`socket_path`), or `port` on LOOPBACK over TCP."""

    socket_path: str | None = None
    port: int | None = None

    @property
    def base_url(self) -> str:
        """The URL requests are addressed to (over a Unix socket the host is a placeholder)."""
        return "http://localhost" if self.socket_path is not None else f"http://{LOOPBACK}:{self.port}"

    def connection(self, timeout_s: float) -> http.client.HTTPConnection:
        """An http.client connection to the server."""
        if self.socket_path is not None:
            return _UnixHTTPConnection(self.socket_path, timeout_s)
        return http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout_s)

    def connector(self, **kwargs: Any) -> Any:
        """An aiohttp connector to the server (`kwargs` go to it: limit, ...)."""
        import aiohttp

        if self.socket_path is not None:
            return aiohttp.UnixConnector(path=self.socket_path, **kwargs)
        return aiohttp.TCPConnector(**kwargs)


def http_get(endpoint: Endpoint, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """GET `path` from the server at `endpoint`: (status, body); OSError where nothing answers."""
    connection = endpoint.connection(timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(endpoint: Endpoint, path: str) -> Any:
    """GET `path` and parse its JSON body (an HTTP error status raises OSError)."""
    status, body = http_get(endpoint, path)
    if status != 200:
        raise OSError(f"GET {path}: HTTP {status}")
    return json.loads(body)


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-empty lines of the server's log, joined with ' | ' (one line, at most LOG_TAIL_CHARS)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(tail) or "(empty log)"
    return joined if len(joined) <= LOG_TAIL_CHARS else "..." + joined[-LOG_TAIL_CHARS:]


class ServerProcess:
    """One server child: `start`, `wait_healthy`, `alive`, `cpu_time_s`, `stop` (also `close`, idempotent).

    `name` names the server in errors ("vLLM server"); `command` is run with `env` added to lem's environment, its
    output (stdout and stderr) appended to `log_path`. The command must arm the parent-death signal (lem.serving.child
    does) and, by its `transport`, make the server listen on `socket_path` ("unix"), or on a TCP port of LOOPBACK that
    it writes into `port_path` before the server binds it ("tcp").
    """

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._folder = Path(tempfile.mkdtemp(prefix="lem-serve-"))  # 0700: no other user can bind inside
        self.socket_path = str(self._folder / "server.sock")
        self.port_path = str(self._folder / "port")
        self.transport = "unix"
        self._process: subprocess.Popen[bytes] | None = None
        self.started_at_s: float | None = None
        self.healthy_after_s: float | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group id); None before start."""
        return self._process.pid if self._process is not None else None

    def start(self, command: Sequence[str], env: Mapping[str, str], transport: str = "unix") -> None:
        """Start the child in a new session (its own process group), from the calling thread, which must outlive
        it (the parent-death signal follows the thread that started the child); `transport` is one of TRANSPORTS."""
        if transport not in TRANSPORTS:
            raise ValueError(f"transport={transport!r}: use one of {TRANSPORTS}")
        self.transport = transport
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env, PARENT_PID_ENV: str(os.getpid())}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
                close_fds=True,
            )
        self.started_at_s = time.monotonic()

    def returncode(self) -> int | None:
        """The child's exit code once it has ended, else None."""
        return self._process.poll() if self._process is not None else None

    def alive(self) -> bool:
        """The server process is still running."""
        return self._process is not None and self._process.poll() is None

    def endpoint(self) -> Endpoint | None:
        """Where the server answers; None while a TCP server's child has not yet chosen its port."""
        if self.transport == "unix":
            return Endpoint(socket_path=self.socket_path)
        try:
            return Endpoint(port=int(Path(self.port_path).read_text()))
        except (OSError, ValueError):  # not written yet (the child writes it atomically)
            return None

    def listens_on(self, port: int) -> bool:
        """Whether a process of the server's (the server or a descendant) listens on LOOPBACK:`port`."""
        for process in self.processes():
            try:
                connections = process.net_connections(kind="tcp4")
            except psutil.Error:
                continue
            if any(c.status == psutil.CONN_LISTEN and tuple(c.laddr) == (LOOPBACK, port) for c in connections):
                return True
        return False

    def wait_healthy(self, timeout_s: float, timeout_key: str) -> float:
        """Poll /health until it answers 200; returns the seconds since start. A child that exits first, or no answer
        within `timeout_s`, is a LemError (phase load) quoting the last lines of the log."""
        assert self._process is not None and self.started_at_s is not None, "start() first"
        deadline = self.started_at_s + timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                raise LemError(
                    f"the {self.name} exited with code {code} while starting; its log {self.log_path} ends: "
                    f"{log_tail(self.log_path)}",
                    phase="load",
                )
            endpoint = self.endpoint()
            try:
                healthy = endpoint is not None and http_get(endpoint, "/health", timeout_s=2.0)[0] == 200
            except OSError:
                healthy = False
            if healthy:
                assert endpoint is not None
                self._refuse_a_stranger(endpoint)
                self.healthy_after_s = time.monotonic() - self.started_at_s
                return self.healthy_after_s
            if time.monotonic() >= deadline:
                raise LemError(
                    f"{timeout_key}={timeout_s:g}: the {self.name} did not answer /health within {timeout_s:g} s; "
                    f"raise {timeout_key} if it is only slow; its log {self.log_path} ends: {log_tail(self.log_path)}",
                    phase="load",
                )
            time.sleep(HEALTH_POLL_S)

    def _refuse_a_stranger(self, endpoint: Endpoint) -> None:
        """A TCP port that answers /health but on which no process of the server's listens belongs to another
        program (it took the port in the instant between the child choosing it and the server binding it)."""
        if endpoint.port is not None and not self.listens_on(endpoint.port):
            raise LemError(
                f"port {endpoint.port} on {LOOPBACK} answered /health, but no process of the {self.name} listens "
                f"there: another program took the port as the server started; run again (lem picks a new free port); "
                f"the server's log {self.log_path} ends: {log_tail(self.log_path)}",
                phase="load",
            )

    def _tree(self) -> dict[int, psutil.Process]:
        """The server and its descendants, by process id (empty once the server has ended)."""
        if self._process is None:
            return {}
        try:
            root = psutil.Process(self._process.pid)
            return {p.pid: p for p in [root, *root.children(recursive=True)]}
        except psutil.NoSuchProcess:
            return {}

    def processes(self) -> list[psutil.Process]:
        """The server and every process it started that is still running (children re-parented away from the
        server are found by their process group)."""
        if self._process is None:
            return []
        found = self._tree()
        for process in psutil.process_iter():
            try:
                if process.pid not in found and os.getpgid(process.pid) == self._process.pid:
                    found[process.pid] = process
            except (ProcessLookupError, psutil.Error):
                continue
        return list(found.values())

    def cpu_time_s(self) -> float:
        """CPU seconds (user + system) used so far by the server and its running descendants."""
        total = 0.0
        for process in self._tree().values():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def _group_alive(self) -> bool:
        assert self._process is not None
        self._process.poll()  # reap the leader, else its zombie keeps the group
        try:
            os.killpg(self._process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return any(_running(p) for p in self.processes())

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group and every process of the server's found before the signal (one that left the
        group, e.g. an MPI-spawned worker in a session of its own), SIGKILL them after `grace_s`, and wait until none
        of them is left."""
        if self._process is not None:
            found = {p.pid: p for p in self.processes()}
            for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
                found.update((p.pid, p) for p in self.processes())
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signum)
                for process in found.values():
                    with contextlib.suppress(psutil.Error, ProcessLookupError):
                        if os.getpgid(process.pid) != self._process.pid:  # the group had its signal
                            process.send_signal(signum)  # psutil checks that the pid is still this process
                deadline = time.monotonic() + wait_s
                while self._left(found) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not self._left(found):
                    break
            self._process.poll()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _left(self, found: dict[int, psutil.Process]) -> bool:
        """Whether the process group or any of `found` still runs."""
        return self._group_alive() or any(_running(p) for p in found.values())

    def close(self) -> None:
        """`stop`, for RunRecord.closes."""
        self.stop()


def _running(process: psutil.Process) -> bool:
    """The process exists, is still the one found (psutil compares its start time), and is not a zombie."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def python_module_command(module: str, *args: str) -> list[str]:
    """`python -m module args` with lem's own interpreter."""
    return [sys.executable, "-m", module, *args]
