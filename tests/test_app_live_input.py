"""Hostile input the app itself must answer, sent raw to real servers, every production
launcher: one server each, shared by the tests.

A body the view never read and that cannot be read gets one answer and the
connection closes (no second, unasked-for answer for a proxy to pin on the next
request); JSON nested past the recursion limit is a 400; request heads over the
limits get a 414 or 431 whichever part refuses them (the server or the app);
a Host outside TRUSTED_HOSTS is a 400.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from app.limits import HEADER_FIELDS, HEADER_LINE_BYTES, REQUEST_LINE_BYTES
from app.strict_json import MAX_DEPTH
from tests.live import PRODUCTION_LAUNCHERS, production_env, recv_all, statuses
from tests.support import PYTHON, assert_no_traceback, free_port, get, request, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

HOST = b"Host: 127.0.0.1\r\n"
PIPELINED_GET = b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n"
# A chunk size that is not hexadecimal: the body cannot be framed.
MALFORMED_CHUNKS = b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"


@pytest.fixture(scope="module", params=PRODUCTION_LAUNCHERS)
def server(request) -> Iterator[tuple[str, int, object]]:
    launcher = request.param
    port = free_port()
    env = production_env(
        launcher, port, WEB_CONCURRENCY=1, TRUSTED_HOSTS="127.0.0.1,localhost,example.com"
    )
    with running([PYTHON, "main.py"], env, port) as s:
        yield launcher, port, s


def exchange(port: int, data: bytes) -> tuple[list[int], bool]:
    """Every status answered to ``data`` on one connection, and whether it then closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        raw = recv_all(s, 2.0)
        try:
            s.settimeout(0.5)
            closed = s.recv(1) == b""
        except (TimeoutError, ConnectionResetError):
            closed = False
        except OSError:
            closed = True
    return statuses(raw), closed


@pytest.mark.parametrize("path", [b"/healthz", b"/missing", b"/api/echo"])
def test_a_malformed_body_gets_one_answer_then_the_connection_closes(server, path):
    """/healthz (405) and /missing (404) never read the body; /api/echo reads it (400)."""
    _, port, s = server
    answers, closed = exchange(
        port, b"POST " + path + b" HTTP/1.1\r\n" + HOST + MALFORMED_CHUNKS + PIPELINED_GET
    )
    assert len(answers) == 1 and 400 <= answers[0] < 500, answers
    assert closed, "the connection stayed open after the answer"
    assert get(port, "/healthz").status == 200
    assert_no_traceback(s.stdout + s.stderr)


def test_a_well_formed_unread_body_keeps_the_connection(server):
    _, port, _ = server
    body = b"5\r\nhello\r\n0\r\n\r\n"
    answers, _ = exchange(
        port,
        b"POST /healthz HTTP/1.1\r\n"
        + HOST
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + body
        + PIPELINED_GET,
    )
    assert answers == [405, 200]


@pytest.mark.parametrize("body", [b"[" * 50_000, b'{"a":' * 50_000, b'{"a": NaN}', b"[1e999]"])
def test_json_that_python_cannot_or_should_not_read_is_a_400(server, body):
    _, port, s = server
    r = request("POST", port, "/api/echo", body=body)
    assert r.status == 400 and r.json()["status"] == 400 and b"Recursion" not in r.body
    assert_no_traceback(s.stdout + s.stderr)


def test_json_as_deep_as_the_limit_is_echoed(server):
    _, port, _ = server
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    r = request("POST", port, "/api/echo", body=deepest)
    assert r.status == 200 and json.loads(r.body)["received"] == json.loads(deepest)


def test_a_host_outside_trusted_hosts_is_a_400_with_the_apps_headers(server):
    _, port, _ = server
    evil = request("GET", port, "/static//style.css", headers={"Host": "evil.example"})
    assert evil.status == 400 and "location" not in evil.headers
    assert evil.headers["x-content-type-options"] == "nosniff" and evil.headers["x-request-id"]
    api = request("GET", port, "/api/info", headers={"Host": "evil.example"})
    assert api.status == 400 and api.json()["status"] == 400
    assert request("GET", port, "/api/info", headers={"Host": "example.com"}).status == 200


def head_with(request_line: bytes, headers: bytes = b"") -> bytes:
    return request_line + b"\r\n" + HOST + headers + b"Connection: close\r\n\r\n"


def request_line_of(length: int, prefix: bytes = b"/api/") -> bytes:
    return b"GET " + prefix + b"a" * (length - len(b"GET  HTTP/1.1") - len(prefix)) + b" HTTP/1.1"


def header_line_of(length: int) -> bytes:
    """``X-Pad: ...`` plus CRLF, ``length`` bytes in all."""
    return b"X-Pad: " + b"v" * (length - len(b"X-Pad: ") - 2) + b"\r\n"


def first_status(port: int, data: bytes) -> int:
    answers, _ = exchange(port, data)
    assert answers, "no answer"
    return answers[0]


def test_request_heads_at_the_limits_pass_and_over_them_are_refused(server):
    """The boundaries are gunicorn's, whoever refuses: the server, or the app."""
    _, port, _ = server
    assert first_status(port, head_with(request_line_of(REQUEST_LINE_BYTES))) == 404
    assert first_status(port, head_with(request_line_of(REQUEST_LINE_BYTES + 1))) == 414
    at_limit = head_with(b"GET /healthz HTTP/1.1", header_line_of(HEADER_LINE_BYTES))
    assert first_status(port, at_limit) == 200
    over = head_with(b"GET /healthz HTTP/1.1", header_line_of(HEADER_LINE_BYTES + 1))
    assert first_status(port, over) == 431
    fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(HEADER_FIELDS - 2))  # + Host, Connection
    assert first_status(port, head_with(b"GET /healthz HTTP/1.1", fields)) == 200
    more = fields + b"X-One-More: 1\r\n"
    assert first_status(port, head_with(b"GET /healthz HTTP/1.1", more)) == 431


# Servers whose own parser refuses an oversized head before the app sees it (gunicorn's
# limit_request_*, our waitress parser); under granian the app answers it itself.
SERVER_REFUSES_OVERSIZED_HEADS = frozenset({"gunicorn", "waitress"})


def answer_to(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        return recv_all(s, 2.0)


@pytest.mark.parametrize(
    "data",
    [
        head_with(request_line_of(REQUEST_LINE_BYTES + 1)),
        head_with(b"GET /api/info HTTP/1.1", header_line_of(HEADER_LINE_BYTES + 1)),
    ],
    ids=["request-line", "header-line"],
)
def test_where_the_app_refuses_a_head_it_answers_with_its_own_error(server, data):
    launcher, port, _ = server
    raw = answer_to(port, data)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.") and int(raw.split(b" ", 2)[1]) in (414, 431), raw[:200]
    if launcher in SERVER_REFUSES_OVERSIZED_HEADS:
        return  # its own parser answers first, at the same byte (test_malformed.py)
    assert b"x-content-type-options: nosniff" in head.lower() and b"x-request-id" in head.lower()
    assert json.loads(body)["status"] in (414, 431)
