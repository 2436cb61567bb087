"""Every launcher of settings.registry through the same checks, as ``python main.py``.

A launcher is one module plus one registry entry: that entry alone puts it
through everything here, each server a real subprocess on a free loopback port.
Where a launcher legitimately differs, it is said once, in ``expected()``
below; a production launcher it does not name is held to every check. (The
development server runs as tests.live.production_env starts it: with
FLASK_DEBUG=0, without which it stops at once instead of draining.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.live import (
    LAUNCHER_NAMES,
    PRODUCTION_LAUNCHERS,
    assert_serves_the_endpoints,
    is_development,
    production_env,
    requests_in_access_log,
    sigterm_during_slow_uploads,
    start_upload,
    wait_until_gone,
)
from tests.malformed_corpus import BODY_FAULTS, SERVED, TRAILER_FAULTS, VECTORS
from tests.raw_http import corpus_violations, error_lines, run_corpus
from tests.support import (
    PYTHON,
    Server,
    assert_no_traceback,
    free_port,
    get,
    listening_ports,
    process_tree,
    request,
    running,
)

WORKERS = 2  # WEB_CONCURRENCY of every server here
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


@dataclass(frozen=True)
class Expected:
    """What a launcher is held to here; the defaults are a production launcher's.

    The corpus (tests/malformed_corpus.py): every malformed vector is refused with
    a 4xx by the server or our check in front of it, every vector of SERVED reaches
    the app, except as said here.
    """

    # Malformed vectors the server hands to the app, which answers them itself.
    reaches_the_app: frozenset[str] = frozenset()
    # Malformed vectors answered 2xx: leniencies nothing of ours can see (docs/production.md).
    serves: frozenset[str] = frozenset()
    # Valid vectors (SERVED) refused with a 4xx: stricter than RFC 9112.
    refuses: frozenset[str] = frozenset()
    # Vectors answered by closing the connection, without a response.
    closes: frozenset[str] = frozenset()
    own_refusals_have_a_body: bool = True
    worker_processes: int = WORKERS  # besides the main process
    readiness_after_sigterm: frozenset[str] = frozenset({"503", "refused"})
    server_header_is_the_bare_name: bool = True  # no version for a scanner to match


# A header with "_" in its name is dropped (a proxy could map it to Transfer-Encoding): the
# request is then framed by its Content-Length, and its body is not JSON, so the app says 400.
UNDERSCORE_HEADER = frozenset({"te_underscore_name"})
# One Host field "a,b" is passed on (only granian's check, which cannot tell it from two
# Host fields joined, refuses it); the app answers 404.
COMMA_IN_HOST = frozenset({"host_with_a_comma"})

# BODY_FAULTS and TRAILER_FAULTS (tests/malformed_corpus.py): a server that frames a body
# lazily passes them on, and the app's read of the body fails: 400.
PRODUCTION_DEPARTURES = {
    "gunicorn": Expected(
        # It also passes on an absurd Content-Length (the app: 413), a compressed
        # coding before chunked (it closes after; the app: 400), and HTTP/1.2 (as 1.1).
        reaches_the_app=BODY_FAULTS
        | TRAILER_FAULTS
        | UNDERSCORE_HEADER
        | COMMA_IN_HOST
        | {"cl_huge_number", "te_gzip_then_chunked", "http_1_2"},
        serves=frozenset({"http_1_2"}),
    ),
    "waitress": Expected(
        reaches_the_app=UNDERSCORE_HEADER | COMMA_IN_HOST,
        # waitress allows no whitespace before a chunk extension, which RFC 9112 does.
        refuses=frozenset({"chunk_extension_after_space"}),
        # A body cut short: waitress closes without an answer.
        closes=frozenset({"chunk_cut_short", "chunk_size_overflow", "content_length_cut_short"}),
        worker_processes=0,  # threads
    ),
    "granian": Expected(
        # What its environ cannot show (launchers/granian_guard.py): a body fault reads as
        # the end of the body, trailers are dropped unread, bare LF ends a line, a second
        # equal Content-Length or Content-Type is dropped, raw UTF-8 in the path looks
        # percent-encoded, and Content-Length is gone when Transfer-Encoding came with it.
        reaches_the_app=BODY_FAULTS
        | TRAILER_FAULTS
        | {
            "bare_lf",
            "bare_lf_inside_a_header",
            "te_hidden_behind_a_bare_lf",
            "te_and_cl",
            "cl_and_te",
            "cl_duplicate_same",
            "duplicate_content_type",
            "utf8_in_path",
            # The per-line head limits are the app's own under granian (app/limits.py).
            "request_line_too_long",
            "header_too_large",
        },
        serves=TRAILER_FAULTS
        | {
            "chunk_extension_without_name",
            "last_chunk_with_a_space",
            "last_chunk_without_final_crlf",
            "cl_duplicate_same",
            "duplicate_content_type",
        },
        own_refusals_have_a_body=False,  # hyper's own 400s are empty; nothing can change them
        # A worker's /readyz says 503 only while its listen queue drains (a few ms after
        # SIGTERM, launchers/granian.py); by the time it is asked the listener is closed.
        readiness_after_sigterm=frozenset({"refused"}),
    ),
}
# Not a production server: one threaded process, and its Server header names Werkzeug's
# and Python's versions. Its handler (launchers/dev_handler.py) refuses what gunicorn does.
DEVELOPMENT = Expected(
    reaches_the_app=BODY_FAULTS
    | TRAILER_FAULTS
    | UNDERSCORE_HEADER
    | COMMA_IN_HOST
    | {"cl_huge_number"},
    worker_processes=0,
    server_header_is_the_bare_name=False,
)


def expected(launcher: str) -> Expected:
    if is_development(launcher):
        return DEVELOPMENT
    return PRODUCTION_DEPARTURES.get(launcher, Expected())


def expected_answer(launcher: str, vector: str) -> str:
    """'refused', 'served', 'closed', or 'app' (a SERVED vector: the app answers it)."""
    e = expected(launcher)
    for answer, vectors in (("closed", e.closes), ("served", e.serves), ("refused", e.refuses)):
        if vector in vectors:
            return answer
    return "app" if vector in SERVED else "refused"


def test_every_departure_names_a_production_launcher_of_the_registry():
    assert set(PRODUCTION_DEPARTURES) <= set(PRODUCTION_LAUNCHERS)
    for departure in [*PRODUCTION_DEPARTURES.values(), DEVELOPMENT]:
        named = departure.reaches_the_app | departure.serves | departure.closes
        assert named | departure.refuses <= set(VECTORS)
        assert not (departure.refuses - SERVED), "only a valid vector can be refused"
        assert not ((departure.serves | departure.reaches_the_app) & SERVED)


def launcher_env(launcher: str, port: int, **extra) -> dict[str, str]:
    return production_env(launcher, port, WEB_CONCURRENCY=WORKERS, **extra)


@pytest.fixture(scope="module")
def served(request) -> Iterator[tuple[str, int, Server]]:
    """(launcher, port, server): one server per launcher for the checks that do not stop it.

    JSON logs, so that the access log tells which requests reached the app.
    """
    launcher = request.param
    port = free_port()
    with running([PYTHON, "main.py"], launcher_env(launcher, port, LOG_FORMAT="json"), port) as s:
        yield launcher, port, s


every_launcher_served = pytest.mark.parametrize("served", LAUNCHER_NAMES, indirect=True)


@every_launcher_served
def test_serves_the_endpoints(served):
    launcher, port, server = served
    assert_serves_the_endpoints(port, launcher)
    wanted = 1 + expected(launcher).worker_processes
    # gunicorn forks its workers up to 0.1 s apart: the first may answer before the last is up.
    deadline = time.monotonic() + 10
    while len(pids := process_tree(server.pid)) < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids) == wanted, pids
    assert listening_ports(pids) == {("127.0.0.1", port)}


@every_launcher_served
def test_security_headers_on_every_response(served):
    launcher, port, _ = served
    answers = {
        path: get(port, path)
        for path in ("/", "/healthz", "/readyz", "/api/info", "/missing", "/api/missing")
    }
    answers["POST /api/echo"] = request("POST", port, "/api/echo", body=b"{}")
    for path, r in answers.items():
        h = r.headers
        assert r.status == (404 if "missing" in path else 200), path
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert h["referrer-policy"], path
        assert REQUEST_ID.fullmatch(h["x-request-id"]), path
        assert "strict-transport-security" not in h, path  # plain HTTP, nothing trusted
        if expected(launcher).server_header_is_the_bare_name:
            assert h.get("server", "") in ("", launcher), h.get("server")


@every_launcher_served
def test_a_well_formed_request_id_is_kept_and_any_other_replaced(served):
    _, port, _ = served
    kept = get(port, "/api/info", headers={"X-Request-ID": "abc.123"})
    assert kept.headers["x-request-id"] == "abc.123"
    made = [
        get(port, "/healthz", headers=headers).headers["x-request-id"]
        for headers in ({"X-Request-ID": "not a valid id!"}, {"X-Request-ID": "a" * 129}, {}, {})
    ]
    assert all(REQUEST_ID.fullmatch(rid) for rid in made), made
    assert len(set(made)) == len(made), made  # a new one each time


@pytest.mark.slow
@every_launcher_served
def test_every_hostile_request_is_refused_served_or_closed(served):
    """Each vector on its own connection, followed there by a pipelined GET /healthz.

    Nothing gets a 5xx or an ERROR log line; no request is smuggled (the app never
    sees /smuggled) or swallowed (the connection left open, the pipelined request
    unanswered); a refusal has a body; each vector gets the answer ``expected()``
    says; and the server keeps serving.
    """
    launcher, port, server = served
    e = expected(launcher)
    outcomes = run_corpus(port, lambda: requests_in_access_log(server.stdout))

    violations = corpus_violations(
        outcomes, bodiless_refusals_allowed=not e.own_refusals_have_a_body
    )
    assert not violations, violations
    wrong = {}
    for name, outcome in outcomes.items():
        want = expected_answer(launcher, name)
        if want == "app":
            if not outcome.app_saw or outcome.answer == "closed":
                wrong[name] = (want, outcome.statuses, outcome.app_saw)
        elif outcome.answer != want:
            wrong[name] = (want, outcome.statuses, outcome.app_saw)
    assert not wrong, f"{launcher}: {wrong}"
    reached = {n for n, o in outcomes.items() if o.app_saw and n not in SERVED}
    assert reached == e.reaches_the_app, {
        "unexpectedly reached the app": sorted(reached - e.reaches_the_app),
        "expected to reach the app": sorted(e.reaches_the_app - reached),
    }
    assert get(port, "/healthz").status == 200
    log = server.stdout + server.stderr
    assert_no_traceback(log)
    assert not error_lines(log), error_lines(log)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
def test_sigterm_lets_slow_uploads_finish_then_exits_0(launcher):
    """Three uploads half sent when SIGTERM arrives: each still gets its 200 and its echo."""
    port = free_port()
    with running([PYTHON, "main.py"], launcher_env(launcher, port, GRACEFUL_TIMEOUT=8), port) as s:
        ready, answers, code, log = sigterm_during_slow_uploads(s, port, 3)
    assert ready in expected(launcher).readiness_after_sigterm, (ready, log)
    for status, sent, body in answers:
        assert status == 200, (status, body[:200], log)
        assert json.loads(body) == {"received": json.loads(sent)}
    assert code == 0, log
    assert_no_traceback(log)


@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
def test_sigint_stops_at_once_even_with_a_request_in_flight(launcher):
    port = free_port()
    env = launcher_env(launcher, port, GRACEFUL_TIMEOUT=20)  # a drain would wait 20 s
    with running([PYTHON, "main.py"], env, port) as server:
        pids = process_tree(server.pid)
        upload, _, _ = start_upload(port, 0)  # never finished
        try:
            time.sleep(0.3)  # let the server read the upload's head (not an assertion)
            server.signal(signal.SIGINT)
            code = server.wait_exit(5)
        finally:
            upload.close()
        left = wait_until_gone(pids)
        log = server.stdout + server.stderr
    assert code == 0, log
    assert_no_traceback(log)
    assert not left, (pids, left, log)


@pytest.mark.parametrize("launcher", LAUNCHER_NAMES)
def test_ctrl_c_to_the_whole_process_group_stops_without_traceback(launcher):
    """A terminal's Ctrl-C signals every process in the foreground group, workers too."""
    port = free_port()
    with running([PYTHON, "main.py"], launcher_env(launcher, port), port) as server:
        os.killpg(server.pid, signal.SIGINT)
        code = server.wait_exit(5)
        log = server.stdout + server.stderr
    assert code == 0, log
    assert_no_traceback(log)
    assert "failed with SystemExit" not in log and "draining" not in log, log
