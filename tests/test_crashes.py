"""gunicorn under crashes: a killed worker is replaced, a hung request is killed by the
worker timeout with a log line naming it, and max_requests recycles workers without
a failed request. Real gunicorn, production defaults (gevent workers) unless stated.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import signal
import threading
import time

import pytest

from tests.live import production_env, serve_app_args, wait_for_workers
from tests.support import PYTHON, assert_no_traceback, free_port, get, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_service_continues():
    port = free_port()
    env = production_env("gunicorn", port, WEB_CONCURRENCY=2)
    with running([PYTHON, "main.py"], env, port) as server:
        before = wait_for_workers(server, 2)
        assert len(before) == 2

        stop = threading.Event()

        def load() -> None:  # a bounded background load while the worker dies
            deadline = time.monotonic() + 10
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    get(port, "/api/info", timeout=2)
                except (OSError, http.client.HTTPException):
                    pass  # a request the killed worker held may be lost, or cut: not counted

        loaders = [threading.Thread(target=load, daemon=True) for _ in range(4)]
        for t in loaders:
            t.start()
        time.sleep(0.3)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
        stop.set()
        for t in loaders:
            t.join(5)

        answered = sum(get(port, "/healthz", timeout=5).status == 200 for _ in range(50))
        after = wait_for_workers(server, 2)
        log = server.stdout + server.stderr

    assert answered == 50
    assert len(after) == 2 and victim not in after, (before, after, log[-2000:])
    assert "killed" in log.lower() or "sigkill" in log.lower(), log[-2000:]


@pytest.mark.slow
def test_a_hung_request_is_killed_by_the_worker_timeout_and_logged():
    port = free_port()
    # A CPU loop blocks the gevent worker entirely, heartbeat included: what a hang is.
    env = production_env("gunicorn", port, WEB_CONCURRENCY=1, REQUEST_TIMEOUT=2, KEEPALIVE=1)
    with running(serve_app_args("tests.apps.hang:app"), env, port) as server:
        (first,) = wait_for_workers(server, 1)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            get(port, "/hang/cpu?seconds=60", timeout=30)
        replaced = wait_for_workers(server, 1)
        while replaced == {first}:  # the old worker may still be on its way out
            time.sleep(0.1)
            replaced = wait_for_workers(server, 1)
        assert get(port, "/healthz").status == 200
        log = server.stdout + server.stderr

    assert "WORKER TIMEOUT" in log, log
    assert "killed by the worker timeout (REQUEST_TIMEOUT=2s)" in log, log
    assert "GET /hang/cpu" in log, log


@pytest.mark.slow
def test_max_requests_recycles_workers_without_a_failed_request():
    port = free_port()
    env = production_env("gunicorn", port, WEB_CONCURRENCY=2, MAX_REQUESTS=20)
    with running([PYTHON, "main.py"], env, port) as server:
        before = wait_for_workers(server, 2)

        def batch(_: int) -> list[int]:
            codes = []
            for _ in range(100):
                codes.append(get(port, "/api/info", timeout=10).status)
                time.sleep(0.01)  # spread over a few seconds: a stopping worker has time to go
            return codes

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = [c for result in pool.map(batch, range(4)) for c in result]
        after = wait_for_workers(server, 2)
        log = server.stdout + server.stderr

    assert codes == [200] * 400
    assert log.count("Autorestarting worker") >= 2, log[-3000:]
    assert len(after) == 2 and after != before, (before, after)
    assert_no_traceback(log)
