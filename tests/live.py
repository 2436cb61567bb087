"""Helpers shared by the real-server tests of production behaviour (issue 5).

Servers are started with tests.support (own process group, killed with it);
these helpers only build their environment and speak raw HTTP to them.
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import signal
import socket
import time

from tests.support import PYTHON, SECRET, Server, clean_env, get

PRODUCTION_LAUNCHERS = ["gunicorn", "waitress"]
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def production_env(launcher: str, port: int, **extra) -> dict[str, str]:
    """A production start on loopback: the defaults a platform would get, plus ``extra``."""
    values = {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "APP_LAUNCHER": launcher,
        "HOST": "127.0.0.1",
        "PORT": port,
        "FLASK_DEBUG": 0,
        **extra,
    }
    if launcher == "dev":
        values.setdefault("ALLOW_DEV_SERVER", 1)
    return clean_env(**values)


def serve_app_args(target: str) -> list[str]:
    """Serve a tests-only WSGI app (tests/apps) with the launcher APP_LAUNCHER names."""
    return [PYTHON, "-m", "tests.apps.serve", target]


def statuses(raw: bytes) -> list[int]:
    """The status code of every response in a raw byte stream, in order."""
    return [int(m.group(1)) for m in STATUS_LINE.finditer(raw)]


def recv_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the peer sends until it closes, resets or goes quiet for ``timeout``."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout * 4
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (what our app always sends)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(body)} of {length} body bytes")
        body += chunk
    return status, headers, body[:length]


def raise_fd_limit(needed: int) -> None:
    """Allow this test process ``needed`` open files (it holds many sockets at once)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def close_all(socks) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


def start_upload(port: int, n: int) -> tuple[socket.socket, bytes, bytes]:
    """Send the head and half of a JSON body; return the socket, the body, the rest to send."""
    body = json.dumps({"upload": n, "data": "x" * 30_000}).encode()
    head = (
        "POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    half = len(body) // 2
    sock.sendall(head + body[:half])
    return sock, body, body[half:]


def readiness_after_signal(port: int) -> str:
    """What /readyz says now: a status code, or "refused" when nothing listens."""
    try:
        return str(get(port, "/readyz", timeout=3).status)
    except (ConnectionRefusedError, ConnectionResetError):
        return "refused"


def sigterm_during_slow_uploads(server: Server, port: int, uploads: int = 3):
    """SIGTERM while ``uploads`` JSON bodies are half sent, then send the rest slowly.

    Returns (what /readyz said after the signal, [(status, sent body, answered body)],
    exit code, log).
    """
    started = [start_upload(port, n) for n in range(uploads)]
    try:
        time.sleep(0.5)  # let the server read every request head (not an assertion)
        server.signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = readiness_after_signal(port)
        for sock, _, rest in started:  # the rest of each body, slowly
            for i in range(0, len(rest), 5_000):
                sock.sendall(rest[i : i + 5_000])
                time.sleep(0.05)
        answers = [read_response(sock) for sock, _, _ in started]
    finally:
        for sock, _, _ in started:
            sock.close()
    code = server.wait_exit(15)
    echoed = [
        (status, sent, body)
        for (status, _, body), (_, sent, _) in zip(answers, started, strict=True)
    ]
    return ready, echoed, code, server.stdout + server.stderr
