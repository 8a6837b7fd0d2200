"""A Hub model id that is not cached is downloaded in the prepare phase: the real `python -m lem` against a Hugging
Face Hub served on 127.0.0.1 (HF_ENDPOINT), real huggingface_hub, the built-in tiny model's files as the repository."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import one_error_line, result_files, run_lem, start_lem, wait_until

from lem.model.hub import files_to_fetch
from lem.model.tiny import ensure_tiny_model
from lem.results.reader import read_result

REPO_ID = "lem-test/tiny-llama"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
QUICK = ["num_input_prompts=2", "max_output_tokens=4", "warmup.max_prompts=2", "baseline.duration_s=0.2"]
#: Files a real repository also carries that lem must not fetch (another weight format, originals, docs).
EXTRA_FILES = {"pytorch_model.bin": b"\0" * 64, "original/consolidated.00.pth": b"\0" * 64, "README.md": b"# tiny\n"}


class FakeHub:
    """One model repository served the way the Hub serves it to huggingface_hub's snapshot_download: the model info
    (`/api/models/<id>/revision/<rev>`), the file tree (`/api/models/<id>/tree/<rev>`) and the files
    (`/<id>/resolve/<rev>/<file>`, HEAD and GET, with X-Repo-Commit and ETag). Other ids answer 404 RepoNotFound,
    ids in `gated` 401 GatedRepo; a file in `refuse` answers 403; with `pace_s`, files over 1 MB are sent in 100 kB
    pieces that far apart. Every request is recorded with its time."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.gated: set[str] = set()
        self.refuse: set[str] = set()
        self.pace_s = 0.0
        self.requests: list[tuple[float, str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def file_gets(self) -> list[str]:
        """The files downloaded (GET of a resolve URL), in order."""
        marker = f"/resolve/{COMMIT}/"
        return [path.split(marker, 1)[1] for _, method, path in self.requests if method == "GET" and marker in path]

    def _entry(self, name: str) -> dict[str, object]:
        data = self.files[name]
        entry: dict[str, object] = {"type": "file", "path": name, "size": len(data), "oid": _git_blob_sha1(data)}
        if name.endswith((".safetensors", ".bin", ".pth")):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _etag(self, name: str) -> str:
        entry = self._entry(name)
        return entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]  # type: ignore[index]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((time.time(), self.command, path))
                api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(revision|tree)/([^/]+)(/.*)?", path)
                file = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                repo = api.group(1) if api else file.group(1) if file else None
                if repo in hub.gated:
                    return self._send(401, b'{"error": "gated"}', {"X-Error-Code": "GatedRepo"}, body)
                if repo != REPO_ID:
                    return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
                revision = api.group(3) if api else file.group(2) if file else None
                if revision not in ("main", COMMIT):
                    return self._send(404, b'{"error": "no such revision"}', {"X-Error-Code": "RevisionNotFound"}, body)
                if api and api.group(2) == "revision":
                    siblings = [{"rfilename": name, "size": len(data)} for name, data in hub.files.items()]
                    info = {"id": REPO_ID, "modelId": REPO_ID, "sha": COMMIT, "private": False, "siblings": siblings}
                    return self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
                if api:
                    tree = [hub._entry(name) for name in hub.files]
                    return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
                assert file is not None
                name = file.group(3)
                if name in hub.refuse:
                    return self._send(403, b'{"error": "forbidden"}', {"X-Repo-Commit": COMMIT}, body)
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hub._etag(name)}"'}
                return self._send(200, hub.files[name], headers, body)

            def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(key, value)
                self.end_headers()
                piece = 100_000 if hub.pace_s and len(data) > 1_000_000 else len(data)
                try:
                    for start in range(0, len(data) if body else 0, piece):
                        self.wfile.write(data[start : start + piece])
                        self.wfile.flush()
                        time.sleep(hub.pace_s)
                except (BrokenPipeError, ConnectionResetError):  # the client went away mid-file
                    pass

        return Handler


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def hub(lem_cache: Path) -> Iterator[FakeHub]:
    """The built-in tiny model's files, plus EXTRA_FILES, as repository REPO_ID at commit COMMIT."""
    folder = ensure_tiny_model(lem_cache)
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}
    server = FakeHub({**files, **EXTRA_FILES})
    yield server
    server.close()


@pytest.fixture
def empty_hub() -> Iterator[FakeHub]:
    """A Hub without REPO_ID's files, for runs that must stop before any file is asked for."""
    server = FakeHub({})
    yield server
    server.close()


def _hub_env(endpoint: str, tmp_path: Path, lem_cache: Path, offline: bool = False) -> dict[str, str]:
    """lem's environment: the Hub at `endpoint`, a Hugging Face home of this test's own, no token."""
    return {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_TOKEN": "",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "LEM_CACHE_DIR": str(lem_cache),
    }


def _snapshot(tmp_path: Path, repo_id: str = REPO_ID) -> Path:
    return tmp_path / "hf" / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots" / COMMIT


def _log_time(log: str, phase: str) -> float:
    """When lem.log says `phase: <phase>` (its timestamps are local time, milliseconds)."""
    stamp = re.search(rf"^\[([^\]]+)\]\[lem\.run_record\]\[INFO\] - phase: {phase}$", log, re.MULTILINE)
    assert stamp is not None, f"no 'phase: {phase}' line in lem.log"
    return datetime.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_files_to_fetch_takes_one_weight_format_and_the_loader_files_only() -> None:
    repo = [
        ".gitattributes",
        "README.md",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "consolidated.safetensors",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "chat_template.jinja",
        "modeling_custom.py",
        "model.gguf",
        "original/params.json",
        "onnx/model.onnx",
        "flax_model.msgpack",
    ]
    assert files_to_fetch(repo) == [
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "modeling_custom.py",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
    ]
    assert files_to_fetch(["config.json", "pytorch_model.bin", "training_args.bin", "tf_model.h5"]) == [
        "config.json",
        "pytorch_model.bin",
    ], "PyTorch .bin weights where there are no safetensors"


@pytest.mark.slow
def test_uncached_hub_model_is_downloaded_in_prepare_then_run_from_the_cache(
    tmp_path: Path, lem_cache: Path, hub: FakeHub
) -> None:
    env = _hub_env(hub.endpoint, tmp_path, lem_cache)
    for run_dir in ("failed", "first", "second"):
        (tmp_path / run_dir).mkdir()
    # 1. The weights are refused: one line, and the half snapshot left behind does not count as cached.
    hub.refuse.add("model.safetensors")
    failed = run_lem(f"model={REPO_ID}", *QUICK, cwd=tmp_path / "failed", env=env)
    assert failed.returncode != 0
    line = one_error_line(failed.stderr)
    assert f"model='{REPO_ID}'" in line and "HTTP 403" in line and "HF_TOKEN" in line, line
    assert (_snapshot(tmp_path) / "config.json").is_file() and not (_snapshot(tmp_path) / "model.safetensors").exists()

    # 2. Completed in the prepare phase (with a progress bar), then run; the result names the commit.
    hub.refuse.clear()
    first_attempt = len(hub.requests)
    run = run_lem(f"model={REPO_ID}", *QUICK, cwd=tmp_path / "first", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = result_files(tmp_path / "first")
    result = read_result(path)
    assert result.status == "ok"
    snapshot = _snapshot(tmp_path)
    assert result.environment["model"] == {
        "id": REPO_ID,
        "source": "hub",
        "path": str(snapshot),
        "revision": COMMIT,
        "downloaded": True,
    }
    size_mb = sum(len(hub.files[name]) for name in files_to_fetch(list(hub.files))) / 1e6
    announce = f"lem: downloading {REPO_ID}@main (commit {COMMIT}): 5 files, {size_mb:.1f} MB"
    assert announce in run.stderr and "Fetching 5 files" in run.stderr, "what is fetched, with progress"
    fetched = hub.file_gets()
    assert sorted(fetched) == files_to_fetch(list(hub.files)), "each file a backend loads, once; nothing else"
    assert not set(fetched) & set(EXTRA_FILES)
    assert fetched[-1] == "model.safetensors" and fetched.count("model.safetensors") == 1, "the refused file"
    log = (path.parent / "lem.log").read_text()
    prepare, baseline = _log_time(log, "prepare"), _log_time(log, "baseline")
    completing = [t for t, _, _ in hub.requests[first_attempt:]]
    assert completing and all(prepare - 0.01 <= t <= baseline + 0.01 for t in completing), "every request in prepare"
    assert abs(result.phases_s["prepare"] - (baseline - prepare)) < 0.05, "phases_s agrees with the log"

    # 3. Cached now: no request reaches the Hub, and the same commit is recorded.
    hub.requests.clear()
    again = run_lem(f"model={REPO_ID}", *QUICK, cwd=tmp_path / "second", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    (path,) = result_files(tmp_path / "second")
    assert read_result(path).environment["model"] == {**result.environment["model"], "downloaded": False}
    assert hub.requests == [], "a cached model is not looked up on the Hub, neither in prepare nor by the backend"


def test_offline_uncached_hub_model_is_one_line(tmp_path: Path, lem_cache: Path, empty_hub: FakeHub) -> None:
    env = _hub_env(empty_hub.endpoint, tmp_path, lem_cache, offline=True)
    run = run_lem(f"model={REPO_ID}", *QUICK, cwd=tmp_path, env=env)
    assert run.returncode != 0
    line = one_error_line(run.stderr)
    assert f"model='{REPO_ID}'" in line and "HF_HUB_OFFLINE=1 forbids downloading" in line, line
    assert "unset HF_HUB_OFFLINE" in line and f"hf download {REPO_ID}" in line, line
    assert empty_hub.requests == []
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "failed" and result.error is not None and result.error.phase == "prepare"


@pytest.mark.parametrize(
    ("args", "gated", "expected"),
    [
        (["model=lem-test/no-such-model"], False, ["no such repository", "check the id", "HF_TOKEN", "local folder"]),
        (["model=lem-test/gated-model"], True, ["gated", "accept its conditions", "HF_TOKEN"]),
        ([f"model={REPO_ID}", "backend.revision=v9"], False, ["no revision 'v9'", "set backend.revision"]),
        ([f"model={REPO_ID}"], False, ["no top-level config.json", "not a transformers checkpoint"]),
    ],
)
def test_hub_refusal_is_one_line_and_leaves_nothing_cached(
    tmp_path: Path, lem_cache: Path, empty_hub: FakeHub, args: list[str], gated: bool, expected: list[str]
) -> None:
    """Unknown, gated, a revision the repository lacks, a repository without a checkpoint (the empty Hub's REPO_ID)."""
    repo_id = args[0].removeprefix("model=")
    if gated:
        empty_hub.gated.add(repo_id)
    run = run_lem(*args, *QUICK, cwd=tmp_path, env=_hub_env(empty_hub.endpoint, tmp_path, lem_cache))
    assert run.returncode != 0
    line = one_error_line(run.stderr)
    assert f"model='{repo_id}'" in line and all(text in line for text in expected), line
    assert empty_hub.requests and not empty_hub.file_gets(), "the Hub was asked, and no file fetched"
    assert not _snapshot(tmp_path, repo_id).parent.exists(), "no snapshot left that could count as cached"


def test_unreachable_hub_is_one_line(tmp_path: Path, lem_cache: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = _hub_env(f"http://127.0.0.1:{port}", tmp_path, lem_cache)
    run = run_lem(f"model={REPO_ID}", *QUICK, cwd=tmp_path, env=env)
    assert run.returncode != 0
    line = one_error_line(run.stderr)
    assert f"model='{REPO_ID}': could not download it from http://127.0.0.1:{port}" in line, line
    assert "check the network connection" in line and f"hf download {REPO_ID}" in line, line


@pytest.mark.slow
def test_sigterm_during_download_ends_it_at_once(tmp_path: Path, lem_cache: Path, hub: FakeHub) -> None:
    """The download runs in a child process that lem stops: the interrupt does not wait for the file in flight."""
    hub.pace_s = 0.5  # the 2.3 MB weights take about 12 s
    lem = start_lem(f"model={REPO_ID}", *QUICK, cwd=tmp_path, env=_hub_env(hub.endpoint, tmp_path, lem_cache))
    try:
        weights = f"/{REPO_ID}/resolve/{COMMIT}/model.safetensors"
        wait_until(lambda: any(r[1:] == ("GET", weights) for r in hub.requests), 60, "the weights' download")
        time.sleep(0.5)
        lem.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = lem.communicate(timeout=30)
        stopped_s = time.monotonic() - started
    finally:
        lem.kill()
    assert lem.returncode == 143 and stopped_s < 5, (lem.returncode, stopped_s, stderr[-2000:])
    (path,) = result_files(tmp_path)
    result = read_result(path)
    assert result.status == "interrupted" and result.error is not None and result.error.phase == "prepare"
    assert not (_snapshot(tmp_path) / "model.safetensors").exists()
