"""Stopping, beyond what every launcher does in tests/test_contract.py.

A request that outlives GRACEFUL_TIMEOUT does not hold the exit, under every
launcher, and gunicorn does not lose a SIGTERM that arrives while its workers boot.
"""

from __future__ import annotations

import re
import signal
import socket
import time

import pytest

from tests.live import LAUNCHER_NAMES, production_env, serve_app_args
from tests.support import PYTHON, assert_no_traceback, free_port, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

# What a launcher logs when it gives up on a request at GRACEFUL_TIMEOUT: ours write
# "graceful timeout"; these servers stop their workers themselves.
GIVING_UP_SAYS = {
    "gunicorn": None,  # its master SIGKILLs the worker without a word
    "granian": "refused to gracefully stop",
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
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
    says = GIVING_UP_SAYS.get(launcher, "graceful timeout")
    if says is not None:
        assert says in log.lower(), log
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
