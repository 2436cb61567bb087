"""Logs from real servers: one access line per request, JSON everywhere with LOG_FORMAT=json,
nothing written twice, access lines on stdout and the rest on stderr."""

from __future__ import annotations

import collections
import json
import re
import signal

import pytest

from tests.live import LAUNCHER_NAMES, PRODUCTION_LAUNCHERS, production_env, serve_app_args
from tests.support import PYTHON, free_port, get, request, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

REQUESTS = [  # (method, path, body, expected status), each sent with its own request id
    ("GET", "/api/info", None, 200),
    ("GET", "/missing", None, 404),
    ("POST", "/api/echo", b"{not json", 400),
]


def exercise(port: int) -> dict[str, tuple[str, str, int]]:
    sent = {}
    for n, (method, path, body, status) in enumerate(REQUESTS):
        rid = f"log-test-{n}"
        r = request(method, port, path, body=body, headers={"X-Request-ID": rid})
        assert r.status == status and r.headers["x-request-id"] == rid
        sent[rid] = (method, path, status)
    generated = get(port, "/healthz", headers={"X-Request-ID": "not a valid id!"})
    sent[generated.headers["x-request-id"]] = ("GET", "/healthz", 200)
    return sent


GUNICORN_COMMAND = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]


@pytest.mark.parametrize(
    "launcher, args",
    [(name, [PYTHON, "main.py"]) for name in LAUNCHER_NAMES] + [("gunicorn", GUNICORN_COMMAND)],
    ids=[*LAUNCHER_NAMES, "gunicorn-command"],
)
def test_json_logs_one_access_line_per_request_nothing_twice(launcher, args):
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=2, LOG_FORMAT="json")
    with running(args, env, port) as server:
        sent = exercise(port)
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0
        out, err = server.stdout, server.stderr

    out_lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    err_lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # all JSON
    assert {entry["logger"] for entry in out_lines} == {"app.access"}
    assert "app.access" not in {entry["logger"] for entry in err_lines}
    assert err_lines, "the server says where it listens"
    for rid, (method, path, status) in sent.items():
        lines = [entry for entry in out_lines if entry.get("request_id") == rid]
        assert len(lines) == 1, (rid, lines)
        (entry,) = lines
        assert (entry["method"], entry["path"], entry["status"]) == (method, path, status)
        assert isinstance(entry["duration_ms"], float | int) and entry["duration_ms"] >= 0
    duplicates = [
        line for line, n in collections.Counter((out + err).splitlines()).items() if n > 1
    ]
    assert not duplicates, duplicates


def test_text_logs_under_gunicorn_are_one_format():
    port = free_port()
    env = production_env("gunicorn", port, WEB_CONCURRENCY=1)
    with running([PYTHON, "main.py"], env, port) as server:
        sent = exercise(port)
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0
        out, err = server.stdout, server.stderr
    line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] \[[A-Z]+\] [\w.]+: ")
    for text in (out, err):
        for entry in text.splitlines():
            assert line.match(entry), entry
    for rid, (method, path, status) in sent.items():
        matching = [e for e in out.splitlines() if f"id={rid}" in e]
        assert len(matching) == 1 and f'"{method} {path}" {status} ' in matching[0], matching


@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_an_unexpected_error_is_a_generic_500_and_one_traceback_in_the_log(launcher):
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1)
    with running(serve_app_args("tests.apps.boom:app"), env, port) as server:
        r = get(port, "/api/boom", headers={"X-Request-ID": "boom-1"})
        after = get(port, "/healthz").status
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0
        out, err = server.stdout, server.stderr
    assert r.status == 500 and r.json()["status"] == 500
    assert "secret detail" not in r.text and "Traceback" not in r.text
    assert after == 200
    assert err.count("Traceback (most recent call last)") == 1, err
    assert err.count("RuntimeError: secret detail that must stay in the log") == 1, err
    assert len([line for line in out.splitlines() if "id=boom-1" in line]) == 1, out


@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_a_request_cannot_forge_an_access_line(launcher):
    """CR LF in the path, percent-encoded: the server decodes it; the log line escapes it."""
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1)
    forged = "/x%0D%0A2026-01-01%2000:00:00,000%20[1]%20[INFO]%20app.access:%20fake"
    with running([PYTHON, "main.py"], env, port) as server:
        assert get(port, forged, headers={"X-Request-ID": "forge-1"}).status == 404
        server.signal(signal.SIGTERM)
        assert server.wait_exit(15) == 0
        out = server.stdout
    lines = out.splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")], out
    (line,) = [line for line in lines if "forge-1" in line]
    assert '"GET /x\\x0D\\x0A2026-01-01 00:00:00,000 [1]' in line, line
