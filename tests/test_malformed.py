"""Malformed requests and body limits against the production launchers, as real servers.

Every vector of tests/malformed_corpus.py is sent on its own connection and
followed there by a pipelined GET /healthz. Nothing may get a 5xx, both
production launchers refuse every vector with a 4xx, the app (which records
every path it is given) never sees the /smuggled request hidden in some of
them, and the server keeps serving afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import PRODUCTION_LAUNCHERS, production_env, recv_all, serve_app_args, statuses
from tests.malformed_corpus import FOLLOW_UP, VECTORS
from tests.support import PYTHON, assert_no_traceback, free_port, get, request, running

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=PRODUCTION_LAUNCHERS)
def served(request):
    """(launcher, port, record file, server): the recording app under a production launcher."""
    launcher = request.param
    port = free_port()
    fd, record = tempfile.mkstemp(prefix="record-")
    os.close(fd)
    env = production_env(launcher, port, WEB_CONCURRENCY=1, RECORD_FILE=record)
    try:
        with running(serve_app_args("tests.apps.recording:app"), env, port) as server:
            yield launcher, port, Path(record), server
    finally:
        os.unlink(record)


def exchange(port: int, data: bytes) -> list[int]:
    """Send a vector and the follow-up; the status of every response that came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data + FOLLOW_UP)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all sent: the answer may still be there
        return statuses(recv_all(s, 1.0))


@dataclass
class Outcome:
    statuses: list[int]  # every response on the connection, in order
    app_saw: list[str]  # "METHOD /path" the app was given, the follow-up left out


def run_corpus(port: int, record: Path) -> dict[str, Outcome]:
    """Each vector in turn (so that what the app records belongs to it)."""
    outcomes = {}
    for name, data in VECTORS.items():
        before = len(record.read_text().splitlines())
        got = exchange(port, data)
        seen = record.read_text().splitlines()[before:]
        outcomes[name] = Outcome(got, [line for line in seen if line != "GET /healthz"])
    return outcomes


# Vectors whose request reaches the app, which refuses it (4xx) itself:
BODY_READ_FAILS = {  # gunicorn frames the body lazily: the app's read of it fails -> 400
    "chunk_size_0x",
    "chunk_size_underscore",
    "chunk_size_plus",
    "chunk_size_negative",
    "chunk_size_leading_space",
    "chunk_bare_lf",
    "chunk_data_too_long",
    "chunk_size_not_hex",
}
REACH_THE_APP = {
    # Both drop a header with "_" in its name (a proxy could map it to Transfer-Encoding);
    # the request is then framed by its Content-Length and its body is not JSON -> 400.
    "gunicorn": BODY_READ_FAILS | {"te_underscore_name", "cl_huge_number"},
    "waitress": {"te_underscore_name"},
}
# waitress 3.0.2 on its own (``waitress-serve``), without launchers/waitress.py's parser:
BARE_WAITRESS_SMUGGLES = {
    "te_and_cl",
    "cl_and_te",
    "te_duplicate",
    "te_leading_comma",
    "te_obs_fold",
}
BARE_WAITRESS_5XX = {"te_identity", "te_chunked_then_identity", "te_unknown"}
BARE_WAITRESS_SERVES = {  # given to the app as if well formed (beyond the smuggling ones)
    "obs_fold",
    "nul_in_path",
    "duplicate_host",
    "bad_version",
    "no_version",
    "request_line_too_long",
    "too_many_headers",
    "header_too_large",
    "te_in_http_1_0",  # chunked ignored in HTTP/1.0: no body, and the rest is dropped
    "te_underscore_name",  # as under every launcher: the header is dropped
}


def test_corpus_is_big_enough():
    assert len(VECTORS) >= 25


@pytest.mark.slow
def test_every_malformed_request_is_refused_with_a_4xx(served):
    launcher, port, record, server = served
    outcomes = run_corpus(port, record)

    server_errors = {
        n: o.statuses for n, o in outcomes.items() if any(s >= 500 for s in o.statuses)
    }
    assert not server_errors, server_errors
    not_refused = {
        n: o.statuses
        for n, o in outcomes.items()
        if not o.statuses or not 400 <= o.statuses[0] < 500
    }
    assert not not_refused, f"{launcher} did not refuse: {not_refused}"
    smuggled = {
        n: o.app_saw for n, o in outcomes.items() if any("/smuggled" in p for p in o.app_saw)
    }
    assert not smuggled, smuggled
    reached = {n for n, o in outcomes.items() if o.app_saw}
    assert reached == REACH_THE_APP[launcher], {n: outcomes[n] for n in reached}
    assert get(port, "/healthz").status == 200
    assert_no_traceback(server.stdout + server.stderr)


@pytest.mark.slow
def test_what_bare_waitress_accepts_is_what_docs_production_md_says(tmp_path):
    """waitress alone, for the record: why launchers/waitress.py has a parser of its own.

    When a waitress upgrade changes this, update docs/production.md (and maybe drop
    StrictParser).
    """
    port = free_port()
    record = tmp_path / "record"
    record.touch()
    env = production_env("waitress", port, RECORD_FILE=record)
    args = [PYTHON, "-m", "waitress", f"--listen=127.0.0.1:{port}", "tests.apps.recording:app"]
    with running(args, env, port):
        outcomes = run_corpus(port, record)
    smuggled = {n for n, o in outcomes.items() if any("/smuggled" in p for p in o.app_saw)}
    server_errors = {n for n, o in outcomes.items() if any(s >= 500 for s in o.statuses)}
    served = {n for n, o in outcomes.items() if o.app_saw} - smuggled
    assert smuggled == BARE_WAITRESS_SMUGGLES
    assert server_errors == BARE_WAITRESS_5XX
    assert served == BARE_WAITRESS_SERVES


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
    _, port, _, _ = served
    status, payload = plain_post(port, "/api/echo", json_body(MIB + over))
    assert status == 413, payload[:300]
    assert json.loads(payload)["status"] == 413 and "error" in json.loads(payload)


@pytest.mark.parametrize("over", [1, 100 * 1024, MIB])
def test_a_chunked_body_over_the_limit_gets_413_json(served, over):
    _, port, _, _ = served
    status, payload = chunked_post(port, "/api/echo", json_body(MIB + over))
    assert status == 413, payload[:300]
    assert json.loads(payload)["status"] == 413


def test_a_body_at_the_limit_is_accepted_with_and_without_chunks(served):
    _, port, _, _ = served
    body = json_body(MIB)
    r = request("POST", port, "/api/echo", body=body, timeout=10)
    assert r.status == 200 and len(r.json()["received"]) == MIB - 2
    status, payload = chunked_post(port, "/api/echo", body)
    assert status == 200 and len(json.loads(payload)["received"]) == MIB - 2


def test_malformed_json_is_400_json(served):
    _, port, _, _ = served
    r = request("POST", port, "/api/echo", body=b'{"unterminated": ', timeout=5)
    assert r.status == 400 and r.json()["status"] == 400
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    "name, expected",
    [
        ("request_line_too_long", (414, 400)),
        ("too_many_headers", (431, 400)),
        ("header_too_large", (431, 400)),
    ],
)
def test_limits_of_the_request_head(served, name, expected):
    _, port, _, _ = served
    got = exchange(port, VECTORS[name])
    assert got and got[0] in expected, got


def test_requests_just_inside_the_limits_are_served(served):
    _, port, _, _ = served
    long_path = "/api/missing/" + "a" * (8000 - len("/api/missing/"))
    assert request("GET", port, long_path).status == 404
    many = {f"X-H{i}": "v" for i in range(90)}
    assert request("GET", port, "/healthz", headers=many).status == 200
    assert request("GET", port, "/healthz", headers={"X-Big": "v" * 8000}).status == 200
