"""METRICS with real servers: every scrape sums every worker, whichever answers it.

N requests spread over 2 workers, then several scrapes: each reports exactly N,
with and without MAX_REQUESTS recycling workers, and after a worker is SIGKILLed.
Scrapes are parsed with prometheus_client's own parser, and a real Prometheus
server (Debian's package) scrapes one instance on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics_files import folder_for
from tests.live import (
    LAUNCHER_NAMES,
    production_env,
    wait_for_workers,
    wait_until_gone,
    workers_of,
)
from tests.support import PYTHON, free_port, get, need_tool, running

pytestmark = pytest.mark.slow

DURATION = "http_server_request_duration_seconds"
ROUTE = "/api/info"
SCRAPES = 5


def scrape(port: int) -> list:
    r = get(port, "/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return list(text_string_to_metric_families(r.text))


def route_count(port: int, route: str = ROUTE, status: str = "200") -> float:
    for family in scrape(port):
        for s in family.samples:
            if s.name == f"{DURATION}_count" and s.labels["http_route"] == route:
                if s.labels["http_response_status_code"] == status:
                    return s.value
    return 0.0


def routes_seen(port: int) -> set[str]:
    return {
        s.labels["http_route"]
        for family in scrape(port)
        for s in family.samples
        if s.name == f"{DURATION}_count"
    }


def serving_pids(stdout: str, path: str = ROUTE) -> set[int]:
    """The processes whose access lines (LOG_FORMAT=json) show ``path`` answered."""
    lines = (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
    return {e["pid"] for e in lines if e.get("logger") == "app.access" and e.get("path") == path}


def send(port: int, count: int, path: str = ROUTE) -> None:
    """``count`` requests, 8 at a time (so that every worker takes some), each answered 200."""
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(port, path, timeout=10).status, range(count)))
    assert statuses == [200] * count


def send_until_both_workers_served(server, port: int, batch: int = 40, batches: int = 10) -> int:
    """Requests in batches until 2 workers have answered some; the number sent."""
    sent = 0
    for _ in range(batches):
        send(port, batch)
        sent += batch
        if len(serving_pids(server.stdout)) >= 2:
            return sent
    raise AssertionError(f"one worker answered all {sent} requests:\n{server.stdout[-2000:]}")


def assert_every_scrape_says(port: int, expected: int) -> None:
    seen = [route_count(port) for _ in range(SCRAPES)]
    assert seen == [expected] * SCRAPES, seen


def booted(server) -> int:
    """How many workers gunicorn has started (its log is on stderr)."""
    return (server.stdout + server.stderr).count("Booting worker")


def send_until_recycled(server, port: int, times: int, timeout: float = 60.0) -> int:
    """Requests in batches until gunicorn has replaced ``times`` workers; the number sent.

    A gevent worker past MAX_REQUESTS stops within a second, so the batches are spaced.
    """
    sent, deadline = 0, time.monotonic() + timeout
    while booted(server) < 2 + times:
        assert time.monotonic() < deadline, f"{booted(server) - 2} recycled:\n{server.stderr}"
        send(port, 10)
        sent += 10
        time.sleep(0.3)
    return sent


def metrics_env(launcher: str, port: int, folder: Path | None, **extra) -> dict[str, str]:
    """METRICS on, access lines in JSON; the multiprocess folder ``folder`` (None: the
    launcher's own choice, under /tmp)."""
    env = production_env(launcher, port, METRICS=1, LOG_FORMAT="json", **extra)
    if folder is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return env


def main(env):
    """``python main.py`` with these variables, until the test ends."""
    return running([PYTHON, "main.py"], env, int(env["PORT"]))


@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
def test_every_scrape_reports_every_request_and_unmatched_paths_add_no_label(launcher):
    port = free_port()
    workers = 2 if launcher in ("gunicorn", "granian") else 1  # waitress, dev: one process
    folder = folder_for(port, {})  # the launcher's own choice: nothing set
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "histogram_1.db").write_bytes(b"\0" * 8)  # a stale file from an earlier run
    env = metrics_env(launcher, port, None, WEB_CONCURRENCY=workers)
    try:
        with main(env) as server:
            assert not (folder / "histogram_1.db").exists()  # wiped at start
            sent = send_until_both_workers_served(server, port) if workers > 1 else 60
            if workers == 1:
                send(port, sent)
            for n in range(5):
                assert get(port, f"/no/such/page/{n}").status == 404
            assert_every_scrape_says(port, sent)
            assert route_count(port, "", "404") == 5
            assert routes_seen(port) == {ROUTE, "", "/metrics", "/healthz"}  # healthz: wait_ready
            names = {f.name for f in scrape(port)}
            assert {"http_server_active_requests", "process_start_time_seconds"} <= names
    finally:
        with contextlib.suppress(OSError):
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
def test_with_metrics_off_metrics_is_404(launcher, tmp_path):
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1)
    with main(env):
        r = get(port, "/metrics")
        assert r.status == 404 and r.headers["content-type"].startswith("text/html")
    assert not folder_for(port, {}).exists()  # nothing made either


def test_gunicorn_recycling_workers_loses_no_count_and_leaves_no_pile(tmp_path):
    folder = tmp_path / "own"  # a person's own PROMETHEUS_MULTIPROC_DIR wins
    port = free_port()
    env = metrics_env("gunicorn", port, folder, WEB_CONCURRENCY=2, MAX_REQUESTS=5)
    with main(env) as server:
        sent = send_until_recycled(server, port, 12)
        assert_every_scrape_says(port, sent)
        files = sorted(p.name for p in folder.glob("*.db"))
        # The archive, and each live worker's histogram and in-flight gauge.
        assert len(files) <= 1 + 2 * 3, files
        assert "histogram_archive.db" in files


def served_then_a_worker_killed(server, port: int) -> tuple[int, int]:
    """Requests answered by both of 2 workers, then one of them SIGKILLed: (sent, its pid)."""
    sent = send_until_both_workers_served(server, port)
    victim = min(wait_for_workers(server, 2))
    os.kill(victim, signal.SIGKILL)
    assert not wait_until_gone([victim], 10)
    return sent, victim


def test_gunicorn_a_sigkilled_workers_counts_are_kept(tmp_path):
    port = free_port()
    with main(metrics_env("gunicorn", port, tmp_path, WEB_CONCURRENCY=2)) as server:
        sent, victim = served_then_a_worker_killed(server, port)
        wait_for_workers(server, 2)
        assert victim not in workers_of(server)
        assert_every_scrape_says(port, sent)
        send(port, 10)
        assert_every_scrape_says(port, sent + 10)


def wait_for_log(server, text: str, times: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (server.stdout + server.stderr).count(text) < times:
        assert time.monotonic() < deadline, server.stdout[-3000:] + server.stderr[-3000:]
        time.sleep(0.1)


def test_granian_a_sigkilled_or_reloaded_workers_counts_are_kept(tmp_path):
    port = free_port()
    with main(metrics_env("granian", port, tmp_path, WEB_CONCURRENCY=2)) as server:
        sent, victim = served_then_a_worker_killed(server, port)
        wait_for_log(server, "Stopped old worker", 1)
        assert_every_scrape_says(port, sent)
        send(port, 10)
        assert_every_scrape_says(port, sent + 10)
        assert not list(tmp_path.glob(f"*_{victim}.db"))  # folded into the archive
        assert (tmp_path / "histogram_archive.db").exists()
        # A reload (SIGHUP) replaces both workers, one after the other: counts kept.
        server.signal(signal.SIGHUP)
        wait_for_log(server, "Stopped old worker", 3, timeout=30)
        assert_every_scrape_says(port, sent + 10)
        assert len(list(tmp_path.glob("*.db"))) <= 1 + 2 * 2


def test_flask_deploy_sh_keeps_counts_across_recycling_and_reload(tmp_path):
    """The production entry (gunicorn -c gunicorn_config.py, as the Procfile and image run it)."""
    port = free_port()
    env = metrics_env("gunicorn", port, tmp_path / "m", WEB_CONCURRENCY=2, MAX_REQUESTS=10)
    env["PATH"] = f"{Path(PYTHON).parent}:{env.get('PATH', '')}"
    with running(["bash", "flask_deploy.sh"], env, port) as server:
        sent = send_until_recycled(server, port, 4)
        assert_every_scrape_says(port, sent)
        # A reload (SIGHUP: systemctl reload) replaces every worker and keeps the counts.
        before = booted(server)
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while booted(server) < before + 2:
            assert time.monotonic() < deadline, server.stderr[-2000:]
            time.sleep(0.1)
        assert_every_scrape_says(port, sent)


PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: flask-app
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def query(port: int, promql: str) -> list:
    r = get(port, f"/api/v1/query?query={quote(promql)}", timeout=5)
    assert r.status == 200, r.text
    return r.json()["data"]["result"]


def test_a_real_prometheus_scrapes_the_same_count(tmp_path):
    prometheus = need_tool(
        "prometheus", "a real server scrapes the app (apt-get install prometheus)"
    )
    app_port, prom_port = free_port(), free_port()
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS_CONFIG.replace("{port}", str(app_port)))
    args = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--log.level=warn",
    ]
    env = metrics_env("gunicorn", app_port, tmp_path / "m", WEB_CONCURRENCY=2)
    with main(env) as server:
        sent = send_until_both_workers_served(server, app_port)
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        try:
            wanted = (
                f'sum({DURATION}_count{{http_route="{ROUTE}",http_response_status_code="200"}})'
            )
            up, count, deadline = [], [], time.monotonic() + 30
            while time.monotonic() < deadline and not (up and count):
                time.sleep(0.5)
                with contextlib.suppress(OSError):
                    up = [
                        r for r in query(prom_port, 'up{job="flask-app"}') if r["value"][1] == "1"
                    ]
                    count = query(prom_port, wanted)
            assert up, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert count and float(count[0]["value"][1]) == sent, count
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            log.close()
