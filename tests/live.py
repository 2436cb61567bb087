"""Helpers shared by the real-server tests of production behaviour (issue 5).

Servers are started with tests.support (own process group, killed with it);
these helpers only build their environment and speak raw HTTP to them.
"""

from __future__ import annotations

import contextlib
import re
import resource
import socket
import time

from tests.support import PYTHON, SECRET, clean_env

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
