"""A plain run shows the progress bar, the summary table and nothing else; the rest goes to lem.log."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import result_files, run_lem

#: Characters that begin a line of the summary table (rich's box drawing) or its title.
_TABLE_LINE = ("┌", "│", "├", "└", " ")


@pytest.mark.slow
def test_plain_run_prints_only_progress_and_summary(tmp_path: Path) -> None:
    # A fresh cache builds the tiny model (transformers' "Writing model shards" bar), and the built-in prompts
    # include ones longer than the model's context (transformers' "Token indices sequence length" warning).
    run = run_lem("num_input_prompts=100", "max_output_tokens=4", cwd=tmp_path, env={"LEM_CACHE_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    unexpected = [line for line in lines if not line.startswith(("measuring ", *_TABLE_LINE))]
    assert not unexpected, unexpected
    assert sum(line.startswith("measuring ") for line in lines) == 1
    assert any("lem: pytorch on lem-tiny-llama" in line for line in lines)
    (path,) = result_files(tmp_path)
    log = (path.parent / "lem.log").read_text()
    assert "[SCHEMA_VERSION_MISSING]" in log, "info findings go to the log"
    assert "Token indices sequence length" in log, "third-party warnings go to the log"
    assert "phase: measure" in log and "ok: " in log
