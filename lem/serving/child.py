"""What runs in the server's child process: tie its life to lem's, then hand over to the backend's server.

Run by lem.serving.server as `python -m lem.serving.child SPEC.json`, in a session (process group) of its own:

1. `prctl(PR_SET_PDEATHSIG, SIGKILL)` before anything else: the kernel kills this process when the lem thread that
   started it ends, however lem ends (SIGKILL included); if lem is already gone (`LEM_SERVER_PARENT_PID` is no longer
   the parent), it exits at once.
2. Every process this one forks (vLLM's engine core, `VLLM::EngineCore`, which FACTS.md shows surviving a SIGKILL
   of the server; its workers) arms the same signal against its own parent (an at-fork hook, inherited by the forked
   processes themselves): a chain, lem → server → engine core → workers. A process started with multiprocessing's
   `spawn` method re-imports this module as `__mp_main__`, which arms it there too.
3. The spec's `server` says which server runs, and `resolved_path` receives the flags it finally got:
   - "vllm": the engine arguments (from lem.backends.vllm.translate, plus lem's CPU settings) become flags of the
     installed server's own parser, which parses them back: a value that would not arrive as given stops the start
     with one line naming the argument (no `--config` file: vLLM drops its underscored keys silently). Then vLLM's
     entry point runs with them, on the spec's Unix socket.
   - "trtllm-serve": TensorRT-LLM's serve command (lem.serving.trtllm) is imported first (it loads CUDA, TensorRT and
     MPI libraries: seconds), then a free TCP port on LOOPBACK is chosen and written to the spec's `port_path`, and
     the command line (lem.serving.trtllm.serve_argv) is parsed back by the installed click command (an unknown flag
     or a value that would not arrive as given stops the start with one line) and run, in this process: the server
     binds the port an instant after it was chosen. Its workers are this process's descendants: for one GPU a
     process-pool child, armed as above (a spawned one imports this module as `__mp_main__`, a forked one runs the
     at-fork hook); for several GPUs MPI processes, which do not import this module and so arm nothing: they rely on
     lem's stop (lem.serving.server) and on MPI noticing its parent's end.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

PARENT_PID_ENV = "LEM_SERVER_PARENT_PID"
#: The address a TCP server listens on: loopback only.
LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
#: Exit code of a child whose parent was gone before the parent-death signal was armed, or whose flags are wrong.
EXIT_PARENT_GONE = 3
EXIT_BAD_ARGUMENTS = 2
_forking_pid = os.getpid()


def die_with_parent(expected_parent: int | None) -> None:
    """Have the kernel SIGKILL this process when its parent (thread) ends; exit now if `expected_parent` is gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(EXIT_PARENT_GONE)


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    try:
        die_with_parent(_forking_pid)
    except OSError:
        os._exit(EXIT_PARENT_GONE)


def arm() -> None:
    """Die with the parent, and make every process forked from here on do the same."""
    parent = os.environ.get(PARENT_PID_ENV)
    die_with_parent(int(parent) if parent and __name__ == "__main__" else None)
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _long_flag(action: argparse.Action) -> str:
    return next(s for s in action.option_strings if s.startswith("--"))


def engine_flags(parser: argparse.ArgumentParser, kwargs: dict[str, Any]) -> list[str]:
    """Command-line flags that give each engine argument in `kwargs` its value, as `parser` reads them.

    Booleans: `--x` / `--no-x` (or nothing for a store-true flag left False); lists: one flag, then the items; dicts:
    JSON. Raises ValueError naming an argument the parser has no flag for.
    """
    actions = {a.dest: a for a in parser._actions if a.option_strings}  # argparse has no public listing
    argv: list[str] = []
    for key, value in kwargs.items():
        action = actions.get(key)
        if action is None:
            raise ValueError(f"engine argument {key}={value!r}: the installed server has no flag for it")
        flag = _long_flag(action)
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif action.nargs == 0:
            if value:
                argv.append(flag)
        elif action.nargs in ("+", "*"):
            argv += [flag, *(str(item) for item in value)]
        elif isinstance(value, dict | list):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def check_parsed(parsed: argparse.Namespace, kwargs: dict[str, Any]) -> None:
    """Every engine argument arrived with its value (dicts: arrived at all); ValueError naming the first that did
    not."""
    for key, value in kwargs.items():
        got = getattr(parsed, key, None)
        arrived = got is not None if isinstance(value, dict) else got == value
        if not arrived:
            raise ValueError(f"engine argument {key}={value!r} reached the server as {got!r}")


def check_click_parsed(command: Any, args: Sequence[str], expected: Mapping[str, Any]) -> None:
    """`args` parse with the click `command`, and each parameter in `expected` (by click name) arrives with its
    value; ValueError naming the first that does not, or the command's own usage error."""
    import click

    try:
        with command.make_context(command.name, list(args)) as context:
            parsed = dict(context.params)
    except click.ClickException as ex:
        raise ValueError(f"the server refused its command line: {ex.format_message()}") from ex
    for name, value in expected.items():
        if parsed.get(name) != value:
            raise ValueError(f"{name}={value!r} reached the server as {parsed.get(name)!r}")


def free_loopback_port() -> int:
    """A TCP port on LOOPBACK that was free an instant ago (the kernel's choice of an unused ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _vllm_arguments(spec: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The server's flags and the engine arguments they carry, with lem's CPU settings resolved as the offline
    backend resolves them (max_model_len from the model's own config)."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from lem.backends.vllm.translate import cpu_engine_settings

    kwargs = dict(spec["engine_kwargs"])
    if spec["cpu"]:
        model_max_len = None
        if kwargs.get("max_model_len") is None:
            model_max_len = EngineArgs(**kwargs).create_model_config().max_model_len
        kwargs.update(cpu_engine_settings(kwargs, model_max_len))
    parser = make_arg_parser(FlexibleArgumentParser())
    argv = [*engine_flags(parser, kwargs), *spec["frontend_args"]]
    check_parsed(parser.parse_args(argv), kwargs)
    return argv, kwargs


def _refuse(ex: ValueError) -> NoReturn:
    print(f"lem: error: {ex}", file=sys.stderr, flush=True)
    sys.exit(EXIT_BAD_ARGUMENTS)


def _write_resolved(spec: dict[str, Any], argv: list[str], engine_args: dict[str, Any]) -> None:
    Path(spec["resolved_path"]).write_text(json.dumps({"argv": argv, "engine_args": engine_args}, indent=2) + "\n")


def _serve_vllm(spec: dict[str, Any]) -> None:
    try:
        argv, kwargs = _vllm_arguments(spec)
    except ValueError as ex:
        _refuse(ex)
    _write_resolved(spec, argv, kwargs)
    print("lem: starting vLLM's OpenAI-compatible server with:", " ".join(argv), flush=True)
    from vllm.entrypoints.launchers.api_server.entry import main as serve

    sys.argv = ["vllm-api-server", *argv]
    serve()


def _serve_trtllm(spec: dict[str, Any]) -> None:
    import importlib

    from lem.atomic import write_text_atomic
    from lem.serving.trtllm import SERVE_COMMAND, SERVE_MODULE, serve_argv

    module = importlib.import_module(SERVE_MODULE)  # seconds: before the port is chosen
    parameters = {**spec["parameters"], "port": free_loopback_port()}
    argv = serve_argv(parameters)
    try:
        check_click_parsed(module.main.commands[SERVE_COMMAND], argv[1:], parameters)
    except ValueError as ex:
        _refuse(ex)
    _write_resolved(spec, argv, spec["llm_api_options"])
    write_text_atomic(Path(spec["port_path"]), str(parameters["port"]))
    print("lem: starting trtllm-serve with:", " ".join(argv), flush=True)
    module.main(args=argv, prog_name="trtllm-serve")


#: The spec's `server` → what runs it.
SERVERS: dict[str, Callable[[dict[str, Any]], None]] = {"vllm": _serve_vllm, "trtllm-serve": _serve_trtllm}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(f"lem: server child {os.getpid()} started (parent-death signal armed); starting {spec['server']}", flush=True)
    SERVERS[spec["server"]](spec)


if __name__ in ("__main__", "__mp_main__"):
    arm()
if __name__ == "__main__":
    main()
