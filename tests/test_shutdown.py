"""SIGTERM drains and SIGINT stops at once, under every launcher, as real processes.

Three slow uploads to POST /api/echo are in flight when SIGTERM arrives: each
must still get its 200 with its body echoed, the process must exit 0, and
/readyz must stop answering 200 from the signal on (503, or refused once the
listener is closed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time

import pytest

from tests.live import (
    production_env,
    serve_app_args,
    sigterm_during_slow_uploads,
)
from tests.support import PYTHON, assert_no_traceback, free_port, running

LAUNCHERS = ["gunicorn", "waitress", "dev"]
UPLOADS = 3


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sigterm_lets_slow_uploads_finish_then_exits_0(launcher):
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1, GRACEFUL_TIMEOUT=8)
    with running([PYTHON, "main.py"], env, port) as server:
        ready, answers, code, log = sigterm_during_slow_uploads(server, port, UPLOADS)

    assert ready in ("503", "refused"), (ready, log)
    for status, sent, body in answers:
        assert status == 200, (status, body[:200], log)
        assert json.loads(body) == {"received": json.loads(sent)}
    assert code == 0, log
    assert_no_traceback(log)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_request_longer_than_the_graceful_timeout_does_not_hold_the_exit(launcher):
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1, GRACEFUL_TIMEOUT=1)
    with running(serve_app_args("tests.apps.hang:app"), env, port) as server:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /hang/sleep?seconds=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            time.sleep(0.5)  # the request is running (not an assertion)
            server.signal(signal.SIGTERM)
            code = server.wait_exit(10)  # 1 s of grace, far from the 60 s request
        log = server.stdout + server.stderr
    assert code == 0, log
    if launcher != "gunicorn":  # gunicorn's master SIGKILLs the worker without a word
        assert "graceful timeout" in log.lower(), log
    assert_no_traceback(log)


@pytest.mark.slow
def test_sigterm_while_gunicorn_workers_boot_is_not_lost():
    """A worker that gets SIGTERM while it boots still stops gracefully (not SIGKILLed later)."""
    port = free_port()
    env = production_env("gunicorn", port, WEB_CONCURRENCY=2)
    with running([PYTHON, "main.py"], env, port, ready=False) as server:
        deadline = time.monotonic() + 20
        while "Booting worker" not in server.stderr and time.monotonic() < deadline:
            time.sleep(0.005)
        server.signal(signal.SIGTERM)  # the workers are loading the app right now
        code = server.wait_exit(15)
        log = server.stdout + server.stderr
    booted = re.findall(r"Booting worker with pid: (\d+)", log)
    assert booted, log
    for pid in booted:
        assert f"Worker exiting (pid: {pid})" in log, log  # a SIGKILLed worker says nothing
    assert code == 0, log


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sigint_stops_at_once_without_traceback(launcher):
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port) as server:
        server.signal(signal.SIGINT)
        code = server.wait_exit(5)
        log = server.stdout + server.stderr
    assert code == 0, log
    assert_no_traceback(log)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_ctrl_c_to_the_whole_process_group_stops_without_traceback(launcher):
    """A terminal's Ctrl-C signals every process in the foreground group, workers too."""
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=2)
    with running([PYTHON, "main.py"], env, port) as server:
        os.killpg(server.pid, signal.SIGINT)
        code = server.wait_exit(5)
        log = server.stdout + server.stderr
    assert code == 0, log
    assert_no_traceback(log)
    assert "failed with SystemExit" not in log and "draining" not in log, log
