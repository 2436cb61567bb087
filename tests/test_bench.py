"""The benchmark runs end to end (``python -m bench --smoke``); no timing is asserted here.

Speed lives in bench/results/ and docs/performance.md. These tests run the bench
as a subprocess and read what it wrote, so they depend on its command line and
its files only: nothing is imported from bench/, and bench/ imports nothing from
tests/. They prove that the one command starts every configuration, measures it,
stops it (on SIGTERM too), writes its figures and leaves nothing running.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# What the bench must never write: the people's page and the latest run's figures.
UNTOUCHED = [ROOT / "docs" / "performance.md", *sorted((ROOT / "bench" / "results").glob("*"))]


def need_wrk_and_matplotlib() -> None:
    """Skip without them; in CI (.ci/run installs wrk) a missing wrk is a failure."""
    if not shutil.which("wrk"):
        message = "wrk is not installed: the bench drives its load with wrk (.ci/run installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("matplotlib", reason="pip install -r bench/requirements.txt")


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


def start_bench(results: Path, marker: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "-m", "bench", "--smoke", "--results", str(results)],
        cwd=ROOT,
        env={**os.environ, "BENCH_SMOKE_MARKER": marker},  # inherited by every server it starts
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_leftovers(proc: subprocess.Popen, marker: str) -> list[int]:
    """Whatever the bench left running, killed; the list of it returned."""
    proc.kill()
    proc.wait()
    left = processes_with(marker)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.slow
def test_bench_smoke_runs_end_to_end(tmp_path):
    need_wrk_and_matplotlib()
    before = {path: path.read_bytes() for path in UNTOUCHED}
    marker = f"BENCH_SMOKE_{uuid.uuid4().hex}"
    proc = start_bench(tmp_path, marker)
    try:
        out, err = proc.communicate(timeout=150)
    finally:
        left = kill_leftovers(proc, marker)
    assert proc.returncode == 0, out + err
    assert not left, f"the bench left processes running: {left}"

    data = json.loads((tmp_path / "bench.json").read_text())
    by_name = {c["name"]: c for c in data["configs"]}
    expected = {"ours-gunicorn", "ours-waitress", "seeds", "bare-gunicorn", "bare-waitress"}
    expected.add("ref-gunicorn-w1")
    if importlib.util.find_spec("granian"):
        expected |= {"ours-granian", "bare-granian", "ceiling-granian"}
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
    assert by_name["ref-gunicorn-w1"]["planned_loads"] == []  # cold start only
    assert set(data["inprocess"]) == {"bare_flask_us", "ours_us"}
    ratios = {r["key"]: r["value"] for r in data["ratios"]}
    for key in ("inprocess", "starter-vs-bare-gunicorn", "gunicorn-rps-vs-seeds", "cold-start"):
        assert ratios[key] is not None, data["ratios"]
    assert ratios["errors"] == 0, data["ratios"]
    assert data["machine"]["usable_cpus"] >= 1 and data["machine"]["wrk"]

    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figures = (tmp_path / "figures.md").read_text()
    assert "gunicorn -w 3 (seeds)" in figures and "## Ratios" in figures
    assert "gunicorn (ours, default)" in out  # the figures, printed too
    assert before == {path: path.read_bytes() for path in UNTOUCHED}, "the bench wrote docs/"


@pytest.mark.slow
def test_bench_stopped_by_sigterm_stops_every_server(tmp_path):
    need_wrk_and_matplotlib()
    marker = f"BENCH_SMOKE_{uuid.uuid4().hex}"
    proc = start_bench(tmp_path, marker)
    try:
        for line in proc.stdout:  # bounded by the bench's own deadlines
            if line.startswith("  ours-gunicorn"):  # one server measured, the next starting
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        left = kill_leftovers(proc, marker)
    assert proc.returncode == 130, out + err
    assert "every server it started was stopped" in err
    assert "Traceback" not in err
    assert not left, f"the bench left processes running: {left}"


def test_bench_without_wrk_says_how_to_install_it(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no wrk anywhere on it
    result = subprocess.run(
        [PYTHON, "-m", "bench", "--smoke", "--results", str(tmp_path)],
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
