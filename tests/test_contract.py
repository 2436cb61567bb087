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
    run_corpus,
    sigterm_during_slow_uploads,
    start_upload,
    wait_until_gone,
)
from tests.malformed_corpus import VECTORS
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
    """What a launcher is held to here; the defaults are a production launcher's."""

    refuses_the_corpus: bool = True
    # Corpus vectors the server hands to the app, which refuses them (4xx) itself.
    reaches_the_app: frozenset[str] = frozenset()
    worker_processes: int = WORKERS  # besides the main process
    readiness_after_sigterm: frozenset[str] = frozenset({"503", "refused"})
    server_header_is_the_bare_name: bool = True  # no version for a scanner to match


# gunicorn frames a chunked body lazily: the app's read of it fails, and the app says 400.
GUNICORN_BODY_READ_FAILS = frozenset(
    {
        "chunk_size_0x",
        "chunk_size_underscore",
        "chunk_size_plus",
        "chunk_size_negative",
        "chunk_size_leading_space",
        "chunk_bare_lf",
        "chunk_data_too_long",
        "chunk_size_not_hex",
    }
)
# A header with "_" in its name is dropped (a proxy could map it to Transfer-Encoding): the
# request is then framed by its Content-Length, and its body is not JSON, so the app says 400.
UNDERSCORE_HEADER = frozenset({"te_underscore_name"})

PRODUCTION_DEPARTURES = {
    # gunicorn also passes on an absurd Content-Length, which the app answers with 413.
    "gunicorn": Expected(
        reaches_the_app=GUNICORN_BODY_READ_FAILS | UNDERSCORE_HEADER | {"cl_huge_number"}
    ),
    "waitress": Expected(reaches_the_app=UNDERSCORE_HEADER, worker_processes=0),  # threads
    "granian": Expected(
        refuses_the_corpus=False,  # granian's own parser accepts some of these vectors
        # No hook runs in a worker when the stop begins, so /readyz cannot say 503 first.
        readiness_after_sigterm=frozenset({"refused"}),
    ),
}
# Not a production server: its parser is not held to the corpus, it is one threaded
# process, and its Server header names Werkzeug's and Python's versions.
DEVELOPMENT = Expected(
    refuses_the_corpus=False, worker_processes=0, server_header_is_the_bare_name=False
)


def expected(launcher: str) -> Expected:
    if is_development(launcher):
        return DEVELOPMENT
    return PRODUCTION_DEPARTURES.get(launcher, Expected())


CORPUS_LAUNCHERS = [name for name in LAUNCHER_NAMES if expected(name).refuses_the_corpus]


def test_every_departure_names_a_production_launcher_of_the_registry():
    assert set(PRODUCTION_DEPARTURES) <= set(PRODUCTION_LAUNCHERS)
    for departure in PRODUCTION_DEPARTURES.values():
        assert departure.reaches_the_app <= set(VECTORS)


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
    pids = process_tree(server.pid)
    assert len(pids) == 1 + expected(launcher).worker_processes, pids
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
@pytest.mark.parametrize("served", CORPUS_LAUNCHERS, indirect=True)
def test_every_malformed_request_is_refused_with_a_4xx(served):
    """Each vector on its own connection, followed there by a pipelined GET /healthz.

    Nothing gets a 5xx, the vector itself gets a 4xx, the app never sees the
    /smuggled request hidden in some of them, and the server keeps serving.
    """
    launcher, port, server = served
    outcomes = run_corpus(port, lambda: requests_in_access_log(server.stdout))

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
    assert reached == expected(launcher).reaches_the_app, {n: outcomes[n] for n in reached}
    assert get(port, "/healthz").status == 200
    assert_no_traceback(server.stdout + server.stderr)


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
