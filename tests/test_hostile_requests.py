"""Requests that once got no answer, a swallowed request or a crash, under every launcher.

Each was found against one launcher and is checked against all of them (the dev
server too), each server a real subprocess on loopback:

- a chunked body whose last chunk lacks the final CRLF, then a pipelined request:
  waitress read the request as the trailer section and never answered it;
  trailers that frame, route or authenticate a request were accepted;
- ``Expect: 100-continue`` on a request without a body: waitress sent
  ``100 Continue`` and then nothing;
- an absolute-form target with a stray bracket: waitress and the dev server died
  on urllib's ValueError, losing earlier answers on the connection;
- targets of the wrong form (none, ``*``, authority-form, relative): waitress
  served them, granian redirected ``GET example.com:443``.

The whole corpus is tests/test_contract.py; what granian cannot refuse is listed
there and in docs/production.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import LAUNCHER_NAMES, is_development, production_env, requests_in_access_log
from tests.raw_http import error_lines, talk
from tests.support import PYTHON, Server, assert_no_traceback, free_port, get, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

HOST = b"Host: 127.0.0.1\r\n"
CHUNKED_POST = b"POST /api/echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
NEXT = b"GET /api/info HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
# granian drops a trailer section unread (docs/production.md): it cannot refuse one.
TRAILERS_UNREAD = {"granian"}


@pytest.fixture(scope="module", params=LAUNCHER_NAMES)
def served(request) -> Iterator[tuple[str, int, Server]]:
    launcher = request.param
    port = free_port()
    env = production_env(launcher, port, LOG_FORMAT="json", WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port) as server:
        yield launcher, port, server
        log = server.stdout + server.stderr
        assert_no_traceback(log)
        assert not error_lines(log), error_lines(log)


def seen_by_the_app(server: Server) -> list[str]:
    return requests_in_access_log(server.stdout)


@pytest.mark.parametrize("pause", [0.0, 0.5], ids=["same write", "half a second later"])
def test_a_request_after_a_last_chunk_without_its_crlf_is_not_swallowed(served, pause):
    """``0\\r\\n`` and no final CRLF: what follows is no trailer section, and no answer is lost.

    The request is refused (or, under granian, answered) and the connection closed:
    never left open with the next request unanswered.
    """
    _, port, _ = served
    got = talk(port, CHUNKED_POST + b"2\r\n{}\r\n0\r\n", NEXT, pause=pause)
    assert got.closed, got
    assert got.statuses and got.statuses[0] in (200, 400), got


@pytest.mark.parametrize(
    "trailer",
    ["Content-Length: 40", "Transfer-Encoding: chunked", "Host: example.com", "TE: trailers"],
)
def test_a_trailer_that_frames_or_routes_a_request_is_refused(served, trailer):
    launcher, port, _ = served
    body = CHUNKED_POST + b"2\r\n{}\r\n0\r\n" + trailer.encode() + b"\r\n\r\n"
    got = talk(port, body, NEXT)
    assert got.closed and got.statuses, got
    expected = 200 if launcher in TRAILERS_UNREAD else 400
    assert got.statuses[0] == expected, got


def test_an_ordinary_trailer_is_accepted(served):
    _, port, _ = served
    got = talk(port, CHUNKED_POST + b"2\r\n{}\r\n0\r\nX-Checksum: abc\r\n\r\n", NEXT)
    assert got.statuses[:1] == [200], got


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /api/info HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n\r\n",
        b"GET /api/info HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        b"POST /api/info HTTP/1.1\r\n"
        + HOST
        + b"Expect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["GET", "GET with Content-Length 0", "POST with Content-Length 0"],
)
def test_expect_100_continue_without_a_body_gets_its_answer(served, request_head):
    """Nothing follows on the connection: the final answer must come anyway (bounded)."""
    _, port, _ = served
    got = talk(port, request_head, quiet=2.0)
    assert got.statuses and got.statuses[0] in (200, 405), got


def test_expect_100_continue_with_a_body_is_still_answered(served):
    _, port, _ = served
    head = (
        b"POST /api/echo HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
    )
    got = talk(port, head, b"{}", pause=0.3)
    assert got.statuses == [200], got


@pytest.mark.parametrize(
    "target",
    [b"http://[::1", b"http://[::1/api/info", b"http://a]b/", b"s://]ufd/:"],
)
def test_a_target_urllib_cannot_split_is_a_400(served, target):
    _, port, _ = served
    method = b"PUT" if target.startswith(b"s:") else b"GET"
    got = talk(port, method + b" " + target + b" HTTP/1.1\r\n" + HOST + b"\r\n")
    assert got.statuses == [400] and got.closed, got


def test_answers_before_a_bad_target_on_the_same_connection_are_kept(served):
    launcher, port, server = served
    good = b"GET /api/info HTTP/1.1\r\n" + HOST + b"\r\n"
    got = talk(port, good + b"GET http://[::1 HTTP/1.1\r\n" + HOST + b"\r\n")
    # The dev server answers one request per connection, and closes.
    assert got.statuses == ([200] if is_development(launcher) else [200, 400]), got
    assert got.closed
    assert get(port, "/healthz").status == 200


@pytest.mark.parametrize(
    "request_line",
    [b"GET HTTP/1.1", b"GET * HTTP/1.1", b"GET example.com:443 HTTP/1.1", b"GET foo/bar HTTP/1.1"],
    ids=["no target", "asterisk with GET", "authority-form", "relative"],
)
def test_a_target_of_the_wrong_form_is_a_400(served, request_line):
    _, port, server = served
    before = len(seen_by_the_app(server))
    got = talk(port, request_line + b"\r\n" + HOST + b"\r\n")
    assert got.statuses == [400] and got.closed, got
    assert seen_by_the_app(server)[before:] == []


def test_options_asterisk_is_valid_and_reaches_the_app(served):
    _, port, server = served
    before = len(seen_by_the_app(server))
    got = talk(port, b"OPTIONS * HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert got.statuses and 200 <= got.statuses[0] < 500, got
    # (The app's access line names the path as Werkzeug gives it: "/*".)
    assert [seen.split()[0] for seen in seen_by_the_app(server)[before:]] == ["OPTIONS"]
