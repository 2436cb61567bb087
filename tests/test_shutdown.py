"""Stopping, beyond what every launcher does in tests/test_contract.py.

A request that outlives GRACEFUL_TIMEOUT does not hold the exit, under every
launcher; gunicorn and granian do not lose a SIGTERM that arrives while their
workers boot; and a request on its way when SIGTERM comes is served.
"""

from __future__ import annotations

import re
import signal
import socket
import time

import pytest

from tests.live import LAUNCHER_NAMES, PRODUCTION_LAUNCHERS, production_env, serve_app_args
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


def stopped_while_booting(launcher: str, booting: str) -> tuple[int, str]:
    """SIGTERM as soon as the log says ``booting``; the exit code and the log."""
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=2)
    with running([PYTHON, "main.py"], env, port, ready=False) as server:
        deadline = time.monotonic() + 20
        while booting not in server.stdout + server.stderr and time.monotonic() < deadline:
            time.sleep(0.002)
        server.signal(signal.SIGTERM)  # the workers are loading the app right now
        code = server.wait_exit(15)
        return code, server.stdout + server.stderr


@pytest.mark.slow
def test_sigterm_while_gunicorn_workers_boot_is_not_lost():
    """A worker that gets SIGTERM while it boots still stops gracefully (not SIGKILLed later)."""
    code, log = stopped_while_booting("gunicorn", "Booting worker")
    booted = re.findall(r"Booting worker with pid: (\d+)", log)
    assert booted, log
    for pid in booted:
        assert f"Worker exiting (pid: {pid})" in log, log  # a SIGKILLed worker says nothing
    assert code == 0, log


@pytest.mark.slow
def test_sigterm_while_granian_workers_boot_is_not_lost():
    """The same under granian, whose main process tells its workers: one told before its
    handlers were in place kept serving until it was killed at GRACEFUL_TIMEOUT."""
    code, log = stopped_while_booting("granian", "Spawning worker-2")
    assert "Spawning worker-2" in log, log
    assert log.count("Stopping worker-") == 2, log  # each worker's own graceful stop
    assert GIVING_UP_SAYS["granian"] not in log, log
    assert code == 0, log


REQUEST = (
    b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    b'Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{"n": 1}'
)


@pytest.mark.slow
@pytest.mark.parametrize("sent_before", [0, 20], ids=["nothing sent", "head begun"])
@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_a_request_on_its_way_when_sigterm_comes_is_served(launcher, sent_before):
    """A proxy connects and sends its request at once; one whose connection was accepted
    just before SIGTERM and whose request (or the rest of its head) arrives just after is
    served, not closed unread (the proxy would answer a POST with 502)."""
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port) as server:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(REQUEST[:sent_before])
            time.sleep(0.3)  # accepted (and read) by now (not an assertion)
            server.signal(signal.SIGTERM)
            time.sleep(0.3)  # the stop is under way, within listener.FIRST_REQUEST_LIMIT
            sock.sendall(REQUEST[sent_before:])
            answer = read_all(sock)
        code = server.wait_exit(15)
        log = server.stdout + server.stderr
    assert answer.startswith(b"HTTP/1.1 200"), (answer, log[-2000:])
    assert answer.endswith(b'{"received":{"n":1}}\n'), answer
    assert code == 0, log


def read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes; a reset is shown as such."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        chunks.append(b"<reset>")
    return b"".join(chunks)
