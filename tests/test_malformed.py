"""Body and head limits under every launcher, and what bare waitress accepts.

Every launcher's answer to the corpus of malformed requests is in
tests/test_contract.py, the numbered fixes in tests/test_hostile_requests.py;
here: 413 for a body over MAX_CONTENT_LENGTH, with or without chunks, the
limits of the request head at gunicorn's very bytes, and why
launchers/waitress_parser.py exists.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
from collections.abc import Iterator

import pytest

from app.limits import HEADER_FIELDS, HEADER_LINE_BYTES, REQUEST_LINE_BYTES
from tests.live import (
    LAUNCHER_NAMES,
    production_env,
    recv_all,
    statuses,
)
from tests.malformed_corpus import HALF_CLOSED, SERVED, TRAILER_FAULTS, VECTORS
from tests.raw_http import run_corpus, send_vector
from tests.support import PYTHON, free_port, request, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=LAUNCHER_NAMES)
def served(request) -> Iterator[int]:
    """The port of ``python main.py`` under each launcher."""
    port = free_port()
    env = production_env(request.param, port, WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port):
        yield port


# waitress 3.0.2 on its own (``waitress-serve``), without launchers/waitress_parser.py:
BARE_WAITRESS_SMUGGLES = {
    "te_and_cl",
    "cl_and_te",
    "te_duplicate",
    "te_chunked_twice_in_a_list",
    "te_leading_comma",
    "te_trailing_comma",
    "te_obs_fold",
}
BARE_WAITRESS_5XX = {
    "te_identity",
    "te_chunked_then_identity",
    "te_gzip_then_chunked",
    "te_unknown",
}
# The next request read as the trailer section, and the connection left open.
BARE_WAITRESS_SWALLOWS = {"last_chunk_without_final_crlf"}
# A target urllib cannot split: an uncaught ValueError (logged at ERROR) and no answer at
# all; the answer to a good request before it on the connection is lost too, or not,
# depending on whether it was written before the error (bracket_after_a_good_request).
BARE_WAITRESS_CRASHES_ON = {"absolute_form_unclosed_bracket", "absolute_form_stray_bracket"}
# Valid requests it never passes to the app: a 100 Continue un-completes a request
# without a body, which then waits for ever (here the pipelined one is served instead).
BARE_WAITRESS_LOSES = {"expect_continue_without_body", "expect_continue_empty_body"}
BARE_WAITRESS_SERVES = {  # given to the app as if well formed (beyond those above)
    "obs_fold",
    "nul_in_path",
    "duplicate_host",
    "duplicate_host_different",
    "host_with_a_comma",
    "duplicate_content_type",
    "bad_version",
    "http_1_2",
    "no_version",
    "no_target",
    "whitespace_before_the_method",
    "asterisk_with_get",
    "authority_form_with_get",
    "relative_target",
    "expect_unknown",
    "request_line_too_long",
    "too_many_headers",
    "header_too_large",
    "te_in_http_1_0",  # chunked ignored in HTTP/1.0: no body, and the rest is dropped
    "te_underscore_name",  # as under every launcher: the header is dropped
    *TRAILER_FAULTS,
}


def test_corpus_is_big_enough():
    assert len(VECTORS) >= 80
    assert SERVED <= set(VECTORS) and HALF_CLOSED <= set(VECTORS)


@pytest.mark.slow
def test_what_bare_waitress_accepts_is_what_docs_production_md_says(tmp_path):
    """waitress alone, for the record: why launchers/waitress_parser.py exists.

    When a waitress upgrade changes this, update docs/production.md (and maybe drop
    parts of the parser).
    """
    port = free_port()
    record = tmp_path / "record"
    record.touch()
    env = production_env("waitress", port, RECORD_FILE=record)
    args = [PYTHON, "-m", "waitress", f"--listen=127.0.0.1:{port}", "tests.apps.recording:app"]
    with running(args, env, port) as server:
        outcomes = run_corpus(port, lambda: record.read_text().splitlines())
        log = server.stdout + server.stderr
    smuggled = {n for n, o in outcomes.items() if any("/smuggled" in p for p in o.app_saw)}
    server_errors = {n for n, o in outcomes.items() if any(s >= 500 for s in o.statuses)}
    left_open = {n for n, o in outcomes.items() if not o.exchange.closed}
    unanswered = {n for n, o in outcomes.items() if o.answer == "closed" and n not in HALF_CLOSED}
    refused = {n for n in SERVED if outcomes[n].answer == "refused" and not outcomes[n].app_saw}
    lost = {n for n in SERVED if not outcomes[n].app_saw} - unanswered - refused
    served = {n for n, o in outcomes.items() if o.app_saw and n not in SERVED}
    served -= smuggled | server_errors | left_open | unanswered
    assert smuggled == BARE_WAITRESS_SMUGGLES
    assert server_errors == BARE_WAITRESS_5XX
    assert left_open == BARE_WAITRESS_SWALLOWS
    assert unanswered - {"bracket_after_a_good_request"} == BARE_WAITRESS_CRASHES_ON
    assert "uncaptured python exception" in log and "Invalid IPv6 URL" in log
    assert lost == BARE_WAITRESS_LOSES
    assert refused == {"chunk_extension_after_space"}  # as under our parser: no BWS before ";"
    assert served == BARE_WAITRESS_SERVES, {
        "newly served": sorted(served - BARE_WAITRESS_SERVES),
        "no longer served": sorted(BARE_WAITRESS_SERVES - served),
    }


def post_body(port: int, head: bytes, body: bytes, early: float) -> tuple[int, bytes]:
    """Send a request head, then its body unless the server has answered already.

    Both servers answer a Content-Length over the limit without reading the body
    (as a client using Expect: 100-continue would hope): a client that kept
    sending would meet a reset that can destroy the answer it has not read yet.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        answered, _, _ = select.select([s], [], [], early)
        if not answered:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                s.sendall(body)
        raw = recv_all(s, 2.0)
    head_part, _, payload = raw.partition(b"\r\n\r\n")
    return statuses(head_part)[0], payload


def plain_post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return post_body(port, head, body, early=0.5)


def chunked_post(port: int, path: str, body: bytes, chunk: int = 64 * 1024) -> tuple[int, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    framed = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + chunk]), body[i : i + chunk])
        for i in range(0, len(body), chunk)
    )
    return post_body(port, head, framed + b"0\r\n\r\n", early=0)  # nobody answers early


def json_body(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    return b'"' + b"x" * (size - 2) + b'"'


@pytest.mark.parametrize("over", [1, 100 * 1024, MIB])
def test_a_body_over_the_limit_gets_413_json_with_content_length(served, over):
    port = served
    status, payload = plain_post(port, "/api/echo", json_body(MIB + over))
    assert status == 413, payload[:300]
    assert json.loads(payload)["status"] == 413 and "error" in json.loads(payload)


@pytest.mark.parametrize("over", [1, 100 * 1024, MIB])
def test_a_chunked_body_over_the_limit_gets_413_json(served, over):
    port = served
    status, payload = chunked_post(port, "/api/echo", json_body(MIB + over))
    assert status == 413, payload[:300]
    assert json.loads(payload)["status"] == 413


def test_a_body_at_the_limit_is_accepted_with_and_without_chunks(served):
    port = served
    body = json_body(MIB)
    r = request("POST", port, "/api/echo", body=body, timeout=10)
    assert r.status == 200 and len(r.json()["received"]) == MIB - 2
    status, payload = chunked_post(port, "/api/echo", body)
    assert status == 200 and len(json.loads(payload)["received"]) == MIB - 2


def test_malformed_json_is_400_json(served):
    port = served
    r = request("POST", port, "/api/echo", body=b'{"unterminated": ', timeout=5)
    assert r.status == 400 and r.json()["status"] == 400
    assert "Traceback" not in r.text


def raw_status(port: int, data: bytes) -> int:
    """The status of the one answer to a raw request that asks the server to close."""
    exchange = send_vector(port, data)
    assert exchange.statuses, exchange
    return exchange.statuses[0]


def request_line_of(size: int) -> bytes:
    """``GET /api/info?q=aaa... HTTP/1.1``, exactly ``size`` bytes without its CRLF."""
    start, end = b"GET /api/info?q=", b" HTTP/1.1"
    return start + b"a" * (size - len(start) - len(end)) + end


def header_line_of(size: int) -> bytes:
    """``X-Big: vvv...``, exactly ``size`` bytes without its CRLF."""
    return b"X-Big: " + b"v" * (size - len(b"X-Big: "))


def head(request_line: bytes = b"GET /api/info HTTP/1.1", fields: bytes = b"") -> bytes:
    return request_line + b"\r\nHost: 127.0.0.1\r\n" + fields + b"Connection: close\r\n\r\n"


def test_the_request_line_limit_falls_on_gunicorns_byte(served):
    """gunicorn 27 counts the request line without its CRLF: 8190 bytes pass, 8191 are a 414."""
    port = served
    assert raw_status(port, head(request_line_of(REQUEST_LINE_BYTES))) == 200
    assert raw_status(port, head(request_line_of(REQUEST_LINE_BYTES + 1))) == 414


@pytest.mark.parametrize(
    ("changed", "over", "status"),
    [
        (("--limit-request-line", "0"), "request-line", 414),  # gunicorn: no line limit
        # gevent's own parser, which takes header lines of up to 64 KiB
        (("-k", "gevent_pywsgi"), "header-line", 431),
    ],
    ids=["no-line-limit", "gevent-pywsgi"],
)
def test_where_gunicorn_does_not_hold_the_limits_the_app_refuses_the_head_itself(
    changed, over, status
):
    """The app leaves the head limits to gunicorn only while gunicorn's parser holds
    them (launchers/gunicorn_parser.py); here the refusal is the app's own."""
    data = {
        "request-line": head(request_line_of(REQUEST_LINE_BYTES + 1)),
        "header-line": head(fields=header_line_of(HEADER_LINE_BYTES - 1) + b"\r\n"),  # 1 byte over
    }[over]
    port = free_port()
    env = production_env("gunicorn", port, WEB_CONCURRENCY=1)
    args = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", *changed, "wsgi:app"]
    with running(args, env, port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(data)
            raw = recv_all(s, 2.0)
    response_head, _, body = raw.partition(b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:200]
    assert b"x-request-id:" in response_head.lower(), response_head
    assert json.loads(body)["status"] == status


def test_the_header_line_limit_falls_on_gunicorns_byte(served):
    """gunicorn 27 counts a header line with its CRLF: 8188 + 2 bytes pass, 8189 + 2 are a 431."""
    port = served
    fits = header_line_of(HEADER_LINE_BYTES - 2) + b"\r\n"
    assert raw_status(port, head(fields=fits)) == 200
    over = header_line_of(HEADER_LINE_BYTES - 1) + b"\r\n"
    assert raw_status(port, head(fields=over)) == 431


# Servers whose own parser measures each header line as sent, and to which the app leaves
# the limits (launchers/gunicorn_parser.py, launchers/waitress.py); under the others the
# app measures a header sent twice as the one field the server joined.
MEASURE_LINES_AS_SENT = frozenset({"gunicorn", "waitress"})


def test_a_header_sent_on_two_lines_each_within_the_limit(served, request):
    """Each line 5,000 bytes, the field joined from them over 8,190: served where the
    server measures the lines, a 431 where the app measures the joined field."""
    launcher = request.node.callspec.params["served"]
    port = served
    line = header_line_of(5000) + b"\r\n"
    expected = 200 if launcher in MEASURE_LINES_AS_SENT else 431
    assert raw_status(port, head(fields=line + line)) == expected


def test_the_header_count_limit_falls_on_gunicorns_field(served):
    """100 header fields pass (Host and Connection among them), 101 are a 431."""
    port = served

    def fields(count: int) -> bytes:  # besides the Host and Connection that head() adds
        return b"".join(b"X-H%d: v\r\n" % i for i in range(count - 2))

    assert raw_status(port, head(fields=fields(HEADER_FIELDS))) == 200
    assert raw_status(port, head(fields=fields(HEADER_FIELDS + 1))) == 431


@pytest.mark.parametrize(
    "name, expected",
    [("request_line_too_long", 414), ("too_many_headers", 431), ("header_too_large", 431)],
)
def test_limits_of_the_request_head(served, name, expected):
    port = served
    got = send_vector(port, VECTORS[name])
    assert got.statuses[:1] == [expected], got
