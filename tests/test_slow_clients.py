"""Slow clients must not stop ordinary requests being answered.

Under the production defaults of every production launcher (gunicorn's gevent
workers, waitress's connection_limit from WORKER_CONNECTIONS, granian's own
event loop): 300 connections send part of a request head and then only a header
line now and then (slowloris); meanwhile 20 ordinary requests, one after
another, each get 3 s. At least 19 must be answered; with heads that stop half
way and never go on, all 20. And 50 connections whose head has arrived but whose
body trickles in at 2 bytes a second (granian gave each a thread of the app, and
nothing else was served): 10 ordinary requests are all answered. Everything is
bounded: the slow connections are closed at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

import pytest

from tests.live import PRODUCTION_LAUNCHERS, close_all, production_env, raise_fd_limit
from tests.support import PYTHON, free_port, get, need_tool, running

STALLED = 300
ORDINARY = 20
PER_REQUEST = 3.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def open_stalled(port: int, count: int) -> list[socket.socket]:
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET /?slow={i} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-0: ".encode())
        socks.append(s)
    return socks


@contextlib.contextmanager
def sending_every(socks: list[socket.socket], every: float, more: Callable[[int], bytes]):
    """Send ``more(n)`` on each connection every ``every`` seconds (n = 1, 2, ...)."""
    stop = threading.Event()

    def run() -> None:
        n = 0
        while not stop.wait(every):
            n += 1
            for s in socks:
                with contextlib.suppress(OSError):
                    s.send(more(n))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)


def trickling(socks: list[socket.socket], every: float = 1.0):
    """One more header line on each connection every ``every`` seconds."""
    return sending_every(socks, every, lambda n: f"a\r\nX-Slow-{n}: ".encode())


def ordinary_requests(port: int, timeout: float = PER_REQUEST) -> int:
    answered = 0
    for _ in range(ORDINARY):
        try:
            answered += get(port, "/healthz", timeout=timeout).status == 200
        except OSError:
            pass
    return answered


def low_open_files_limit() -> None:
    """preexec: a soft limit below the 300 connections, as a service might start with."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
@pytest.mark.parametrize("soft_limit", ["inherited", "256"])
def test_stalled_connections_do_not_starve_ordinary_requests(launcher, soft_limit):
    raise_fd_limit(STALLED + 200)
    port = free_port()
    preexec = low_open_files_limit if soft_limit == "256" else None
    with running(
        [PYTHON, "main.py"], production_env(launcher, port), port, preexec=preexec
    ) as server:
        socks = open_stalled(port, STALLED)
        try:
            with trickling(socks):
                time.sleep(1.0)  # every slow connection accepted and stalled (not an assertion)
                answered = ordinary_requests(port)
        finally:
            close_all(socks)
        log = server.stdout + server.stderr
    assert answered >= ORDINARY - 1, f"{launcher}: {answered}/{ORDINARY} answered\n{log[-3000:]}"
    assert "Too many open files" not in log, log[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_heads_that_stop_half_way_do_not_cost_a_single_ordinary_request(launcher):
    raise_fd_limit(STALLED + 200)
    port = free_port()
    with running([PYTHON, "main.py"], production_env(launcher, port, WEB_CONCURRENCY=2), port):
        socks = open_stalled(port, STALLED)  # and never a byte more
        try:
            answered = ordinary_requests(port, timeout=5.0)
        finally:
            close_all(socks)
    assert answered == ORDINARY, f"{launcher}: {answered}/{ORDINARY} answered"


TRICKLING = 50
BODY = 1000  # bytes each trickling body announces: never all sent within the test


def open_trickling_bodies(port: int, count: int) -> list[socket.socket]:
    """Connections that sent a whole request head, and the first byte of its body."""
    head = (
        "POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY}\r\n\r\n{{"
    ).encode()
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(head)
        socks.append(s)
    return socks


def trickling_bodies(socks: list[socket.socket]):
    """Two more bytes of each body every second (far from its Content-Length)."""
    return sending_every(socks, 1.0, lambda n: b"  ")


@pytest.mark.slow
@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_trickling_bodies_do_not_starve_ordinary_requests(launcher):
    raise_fd_limit(TRICKLING + 200)
    port = free_port()
    with running(
        [PYTHON, "main.py"], production_env(launcher, port, WEB_CONCURRENCY=2), port
    ) as server:
        socks = open_trickling_bodies(port, TRICKLING)
        try:
            with trickling_bodies(socks):
                time.sleep(1.0)  # every body under way (not an assertion)
                outcomes = [_outcome(port) for _ in range(10)]  # each bounded by 3 s
        finally:
            close_all(socks)
        log = server.stdout + server.stderr
    answered = outcomes.count("200")
    assert answered == 10, (
        f"{launcher}: {answered}/10 answered beside {TRICKLING} slow bodies: {outcomes}\n"
        f"{log[-3000:]}"
    )


def _outcome(port: int) -> str:
    """ "200", another status, or the error, with how long it took when not a 200."""
    started = time.monotonic()
    try:
        status = str(get(port, "/healthz", timeout=PER_REQUEST).status)
    except OSError as error:
        status = repr(error)
    return status if status == "200" else f"{status} after {time.monotonic() - started:.2f} s"


def wait_until_connected(output, count: float, timeout: float) -> bool:
    """Until slowhttptest's status report (every 5 s) shows ``count`` connections held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output.seek(0)
        held = re.findall(r"connected:\s+(\d+)", ANSI.sub("", output.read()))
        if held and int(held[-1]) >= count:
            return True
        time.sleep(0.2)
    return False


def stop(process: subprocess.Popen) -> None:
    """SIGTERM first, SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
            return


@pytest.mark.slow
@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_slowhttptest_second_opinion(launcher):
    """Debian's slowhttptest holds the 300 slow connections instead of our sockets.

    Its own "service available" probe only connects (a server that stopped
    accepting still completes handshakes from its backlog), so the verdict is
    our 20 requests, made while the attack is still running.
    """
    tool = need_tool("slowhttptest", "the second opinion on slow clients")
    port = free_port()
    # -H slow headers: 300 connections at 300/s, a header line every 2 s, for up to 60 s
    # (it is stopped as soon as the ordinary requests are done).
    # stdbuf: its report is block-buffered into a file, and lost when it is stopped.
    command = [
        need_tool("stdbuf"),
        "-oL",
        tool,
        "-H",
        "-c",
        str(STALLED),
        "-r",
        str(STALLED),
        "-i",
        "2",
        "-l",
        "60",
    ]
    command += ["-p", "3", "-u", f"http://127.0.0.1:{port}/healthz"]
    with (
        running([PYTHON, "main.py"], production_env(launcher, port), port),
        tempfile.TemporaryFile("w+") as output,
    ):
        attack = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            held = wait_until_connected(output, STALLED * 0.9, timeout=15)
            answered = ordinary_requests(port)
            attack_lasted = attack.poll() is None
        finally:
            stop(attack)
        output.seek(0)
        report = ANSI.sub("", output.read())
    assert held, f"slowhttptest never held {STALLED} connections:\n{report[-2000:]}"
    assert attack_lasted, report[-2000:]
    assert answered >= ORDINARY - 1, f"{launcher}: {answered}/{ORDINARY}\n{report[-2000:]}"
