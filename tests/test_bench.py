"""The benchmark runs end to end (``python -m bench --smoke``): no timing is asserted here.

Speed lives in bench/ and docs/performance.md; this only proves that the one
command starts every configuration, measures it, stops it, and writes its
JSON, chart and page, leaving nothing running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import PYTHON, ROOT, clean_env, need_tool


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker``: the bench, its servers, their workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_bench_smoke_runs_end_to_end(tmp_path):
    need_tool("wrk", "the bench drives its load with wrk")
    pytest.importorskip("matplotlib", reason="pip install -r bench/requirements.txt")
    results, page = tmp_path / "results", tmp_path / "performance.md"
    marker = f"BENCH_SMOKE_{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [PYTHON, "-m", "bench", "--smoke", "--results", str(results), "--docs", str(page)],
        cwd=ROOT,
        env=clean_env(BENCH_SMOKE_MARKER=marker),  # inherited by every server it starts
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=150)
    finally:
        proc.kill()
        proc.wait()
        left = processes_with(marker)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, out + err
    assert not left, f"the bench left processes running: {left}"

    data = json.loads((results / "bench.json").read_text())
    by_name = {c["name"]: c for c in data["configs"]}
    expected = {"ours-gunicorn", "ours-waitress", "ours-dev", "seeds", "sync-2cpu+1"}
    expected |= {"bare-gunicorn", "ref-gunicorn-minimal"}
    assert expected <= set(by_name), sorted(by_name)
    for config in data["configs"]:
        assert not config["failure"], config
        assert len(config["cold_start_ms"]["samples"]) == 1, config
        assert all(code == 0 for code in config["exit_codes_on_sigterm"]), config
        assert config["memory_after_warmup"]["processes"] >= 1, config
        assert set(config["loads"]) == set(config["planned_loads"]), config
        for load in config["loads"].values():
            assert load["runs"] and load["runs"][0]["requests"] > 0, config
    assert by_name["ours-gunicorn"]["planned_loads"] == ["c64-keepalive"]  # --smoke: one load
    assert {g["key"] for g in data["summary"]["goals"]} >= {"default-throughput", "errors"}
    assert data["machine"]["usable_cpus"] >= 1 and data["machine"]["wrk"]
    assert (results / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert "gunicorn -w 3 (seeds)" in text and "bench.png" in text
    assert "gunicorn (ours, default)" in out  # the table on stdout


def test_bench_without_wrk_says_how_to_install_it(tmp_path):
    env = clean_env(PATH=str(tmp_path))  # no wrk anywhere on it
    result = subprocess.run(
        [PYTHON, "-m", "bench", "--smoke", "--results", str(tmp_path), "--docs", "none"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert "apt-get install -y wrk" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bench.json").exists()
