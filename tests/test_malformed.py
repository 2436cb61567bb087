"""Body and head limits of the production launchers, and what bare waitress accepts.

Every launcher's answer to the corpus of malformed requests is in
tests/test_contract.py; here: 413 for a body over MAX_CONTENT_LENGTH, with or
without chunks, the limits of the request head, and why launchers/waitress.py
has a parser of its own.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
from collections.abc import Iterator

import pytest

from tests.live import (
    PRODUCTION_LAUNCHERS,
    production_env,
    recv_all,
    run_corpus,
    send_vector,
    statuses,
)
from tests.malformed_corpus import VECTORS
from tests.support import PYTHON, free_port, request, running

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=PRODUCTION_LAUNCHERS)
def served(request) -> Iterator[int]:
    """The port of ``python main.py`` under a production launcher."""
    port = free_port()
    env = production_env(request.param, port, WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port):
        yield port


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
        outcomes = run_corpus(port, lambda: record.read_text().splitlines())
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


@pytest.mark.parametrize(
    "name, expected",
    [
        ("request_line_too_long", (414, 400)),
        ("too_many_headers", (431, 400)),
        ("header_too_large", (431, 400)),
    ],
)
def test_limits_of_the_request_head(served, name, expected):
    port = served
    got = send_vector(port, VECTORS[name])
    assert got and got[0] in expected, got


def test_requests_just_inside_the_limits_are_served(served):
    port = served
    long_path = "/api/missing/" + "a" * (8000 - len("/api/missing/"))
    assert request("GET", port, long_path).status == 404
    many = {f"X-H{i}": "v" for i in range(90)}
    assert request("GET", port, "/healthz", headers=many).status == 200
    assert request("GET", port, "/healthz", headers={"X-Big": "v" * 8000}).status == 200
