"""What is granian's own: its options, the guard in front of the app, its kill timeout, its absence.

What granian must do as every launcher does is tests/test_contract.py (the corpus
of hostile requests included). Here: what launchers/granian_guard.py refuses and
why (bare granian served requests smuggled behind an ambiguous Transfer-Encoding),
and that a body is read before the app runs.
"""

from __future__ import annotations

import io
import math
import os
import re
import signal
import subprocess
import textwrap
import time

import pytest

from launchers.granian_guard import read_body_first, refusal
from tests.live import need_launcher, production_env, requests_in_access_log, start_upload
from tests.malformed_corpus import HALF_CLOSED, SERVED
from tests.raw_http import run_corpus, talk
from tests.support import (
    PYTHON,
    ROOT,
    assert_no_traceback,
    free_port,
    raw_exchange,
    request,
    running,
)
from tests.test_contract import PRODUCTION_DEPARTURES


def granian_env(port: int, **extra) -> dict[str, str]:
    """A production start of granian (skipped, or failed in CI, when it is not installed)."""
    return production_env("granian", port, **{"WEB_CONCURRENCY": 2, **extra})


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1."), raw[:200]
    return int(raw.split(b" ", 2)[1])


def test_options_follow_the_settings():
    env = granian_env(8000, WEB_CONCURRENCY=3, WEB_THREADS=2, GRACEFUL_TIMEOUT=2.5, KEEPALIVE=7)
    from launchers.granian import options
    from settings import load_settings

    opts = options(load_settings(env, dotenv_path=None))
    assert opts["workers"] == 3
    assert opts["workers_kill_timeout"] == math.ceil(2.5)
    assert opts["http1_settings"].header_read_timeout == 7000
    assert (opts["address"], opts["port"]) == ("127.0.0.1", 8000)
    assert opts["log_access"] is False  # the app writes the access log
    # A thread for each connection (a slow body parks one), the app on WEB_THREADS of them.
    assert opts["blocking_threads"] == opts["backpressure"] == 1000


def environ(**fields: str) -> dict[str, str]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "127.0.0.1", **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"HTTP_TRANSFER_ENCODING": "chunked,chunked"},  # two fields, joined by granian
        {"HTTP_TRANSFER_ENCODING": ",chunked"},
        {"HTTP_TRANSFER_ENCODING": "gzip, chunked"},
        {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "2"},  # Transfer_Encoding
        {"HTTP_HOST": "127.0.0.1,127.0.0.1"},  # two Host fields, joined
        {"PATH_INFO": ""},  # authority-form: GET example.com:443
        {"PATH_INFO": "*"},
        {"REQUEST_METHOD": "get"},
        {"HTTP_EXPECT": "something-else"},
    ],
)
def test_the_guard_refuses_what_the_environ_shows_gunicorn_would_refuse(fields):
    assert refusal(environ(**fields)) is not None


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"HTTP_TRANSFER_ENCODING": "chunked"},
        {"HTTP_TRANSFER_ENCODING": "Chunked"},
        {"CONTENT_LENGTH": "2"},
        {"REQUEST_METHOD": "OPTIONS", "PATH_INFO": "*"},
        {"HTTP_EXPECT": "100-continue"},
        {"HTTP_HOST": ""},  # RFC 9112 allows an empty Host
    ],
)
def test_the_guard_lets_well_formed_requests_through(fields):
    assert refusal(environ(**fields)) is None


class Body(io.BytesIO):
    """wsgi.input that counts what was asked of it."""

    reads: list[int | None]

    def read(self, size: int | None = -1) -> bytes:
        self.reads = [*getattr(self, "reads", []), size]
        return super().read(size)


def test_a_body_is_read_before_the_app_up_to_one_byte_past_the_limit():
    chunked = environ(HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input": Body(b"x" * 50)})
    read_body_first(chunked, max_body=10)
    assert chunked["wsgi.input"].read() == b"x" * 11  # the app then sees it is over: 413
    sized = environ(CONTENT_LENGTH="5", **{"wsgi.input": Body(b"hello")})
    read_body_first(sized, max_body=10)
    assert sized["wsgi.input"].read() == b"hello"
    too_big = environ(CONTENT_LENGTH="50", **{"wsgi.input": Body(b"x" * 50)})
    read_body_first(too_big, max_body=10)
    assert not hasattr(too_big["wsgi.input"], "reads")  # left for the app to refuse unread


def test_a_request_s_environ_holds_none_of_the_process_s_environment(monkeypatch):
    """granian's WSGI wrapper, as our worker builds it: the environ the app gets holds
    what granian and the request put there, and no variable of the process."""
    need_launcher("granian")
    from granian import wsgi
    from granian.server import mp, mt

    from launchers import granian as launcher

    for server in (mp, mt):  # what the launcher replaces, restored after
        monkeypatch.setattr(server, "_wsgi_call_wrap", server._wsgi_call_wrap)
    monkeypatch.setenv("HTTP_X_REQUEST_ID", "from-the-process")
    monkeypatch.setenv("APP_TEST_PROCESS_ONLY", "1")
    launcher._environ_without_the_process_environment()
    seen = []

    def app(environ, start_response):
        seen.append(dict(environ))
        start_response("200 OK", [])
        return [b""]

    runner = mp._wsgi_call_wrap(app, {}, None)
    proto = type("Proto", (), {"response_bytes": lambda *args: None})()
    runner(proto, {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "x"})
    (environ,) = seen
    assert "HTTP_X_REQUEST_ID" not in environ and "APP_TEST_PROCESS_ONLY" not in environ
    assert "PATH" not in environ
    assert environ["HTTP_HOST"] == "x" and environ["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert wsgi.os.environ is os.environ  # granian's module is left as it was


def test_a_variable_of_the_server_s_environment_is_not_a_request_header():
    """Live: HTTP_X_REQUEST_ID in granian's environment once became every request's id."""
    port = free_port()
    env = granian_env(port, HTTP_X_REQUEST_ID="from-the-process-environment")
    with running([PYTHON, "main.py"], env, port):
        made = request("GET", port, "/healthz").headers["x-request-id"]
        assert re.fullmatch("[0-9a-f]{32}", made), made  # a new one, not the variable's
        sent = request("GET", port, "/healthz", headers={"X-Request-ID": "client-id-1"})
        assert sent.headers["x-request-id"] == "client-id-1"


def test_granian_enforces_the_request_limits():
    port = free_port()
    with running([PYTHON, "main.py"], granian_env(port, MAX_CONTENT_LENGTH=1000), port):
        big = b'{"x": "' + b"a" * 2000 + b'"}'
        too_big = request("POST", port, "/api/echo", body=big)
        assert too_big.status == 413 and "error" in too_big.json()
        chunked = b"POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += b"".join(
            b"%x\r\n%s\r\n" % (len(big[i : i + 500]), big[i : i + 500])
            for i in range(0, len(big), 500)
        )
        chunked += b"0\r\n\r\n"
        assert status_of(raw_exchange(port, chunked, timeout=3)) == 413
        # Each asks the server to close after answering, so none waits out the timeout.
        refused = {400, 414, 431}  # not 404: these requests name an existing path
        for target in (b"/healthz?q=" + b"a" * 9000, b"/healthz/" + b"a" * 9000):
            line = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            assert status_of(raw_exchange(port, line, timeout=3)) in refused
        field = (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
            + b"a" * 9000
            + b"\r\n\r\n"
        )
        assert status_of(raw_exchange(port, field, timeout=3)) in refused
        fields = b"".join(b"X-F%d: y\r\n" % i for i in range(101))
        many = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n"
        assert status_of(raw_exchange(port, many, timeout=3)) in refused
        # Just under the limits is an ordinary request, and the server still serves.
        fine = b"GET /healthz?q=" + b"a" * 7000 + b" HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"b" * 8000
        assert status_of(raw_exchange(port, fine + b"\r\nConnection: close\r\n\r\n")) == 200
        assert request("GET", port, "/healthz").status == 200


@pytest.mark.slow
def test_sigterm_gives_up_on_a_stalled_request_after_graceful_timeout():
    port = free_port()
    with running([PYTHON, "main.py"], granian_env(port, GRACEFUL_TIMEOUT=2), port) as server:
        upload, _, _ = start_upload(port, 0)  # never finished
        try:
            time.sleep(0.3)  # let granian read the upload's head (not an assertion)
            server.signal(signal.SIGTERM)
            # Bounded: without its kill timeout granian would wait for the upload for ever.
            code = server.wait_exit(10)
        finally:
            upload.close()
        log = server.stdout + server.stderr
    assert code == 0, log
    assert_no_traceback(log)


HIDE_GRANIAN = textwrap.dedent(
    """
    import sys

    class HideGranian:
        # As if granian were not installed: no finder knows it, so importlib.util.find_spec
        # says None and an import fails the way a missing package does.
        def __init__(self, finders):
            self.finders = finders

        def find_spec(self, name, path=None, target=None):
            if name == "granian" or name.startswith("granian."):
                return None
            for finder in self.finders:
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    return spec
            return None

        def invalidate_caches(self):
            for finder in self.finders:
                getattr(finder, "invalidate_caches", lambda: None)()

    sys.meta_path[:] = [HideGranian(list(sys.meta_path))]
    """
)


def test_a_missing_granian_is_one_clear_message(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE_GRANIAN)
    env = granian_env(free_port(), PYTHONPATH=str(tmp_path))
    probe = "import importlib.util, sys; assert importlib.util.find_spec('granian') is None; import granian"
    hidden = subprocess.run(
        [PYTHON, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert "No module named 'granian'" in hidden.stderr, "the sitecustomize did not hide granian"
    result = subprocess.run(
        [PYTHON, "main.py"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )
    assert result.returncode == 4, result
    assert_no_traceback(result.stderr)
    message = result.stderr
    assert "APP_LAUNCHER=granian" in message and "pip install" in message, message
    assert "granian" in message.split("pip install", 1)[1], message


@pytest.fixture(scope="module")
def granian_served():
    port = free_port()
    with running([PYTHON, "main.py"], granian_env(port, LOG_FORMAT="json"), port) as server:
        yield port, server


@pytest.mark.parametrize(
    "encoding",
    [b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", b"Transfer-Encoding: ,chunked"]
    + [b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: chunked, chunked"],
)
@pytest.mark.parametrize("pause", [0.0, 0.5], ids=["pipelined", "half a second later"])
def test_a_request_hidden_behind_an_ambiguous_transfer_encoding_is_not_served(
    granian_served, encoding, pause
):
    """Bare granian served the hidden request; now the first gets 400 and the connection closes."""
    port, server = granian_served
    head = b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + encoding + b"\r\n\r\n"
    hidden = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    got = talk(port, head + b"0\r\n\r\n", hidden, pause=pause)
    seen = requests_in_access_log(server.stdout)
    assert got.statuses == [400] and got.closed, got
    assert got.body_sizes[0] > 0  # our refusal, with a body (granian's own have none)
    assert not any("/smuggled" in request for request in seen), seen


# granian 2.8.7 on its own (``python -m granian --interface wsgi``), without our guard.
BARE_GRANIAN_SMUGGLES = {
    "te_duplicate",
    "te_chunked_twice_in_a_list",
    "te_leading_comma",
    "te_gzip_then_chunked",
}
BARE_GRANIAN_PASSES_ON = {  # malformed, and handed to the app (beyond the smuggling ones)
    "authority_form_with_get",  # PATH_INFO "": the app answered a redirect
    "asterisk_with_get",
    "lower_case_method",
    "duplicate_host",
    "duplicate_host_different",
    "host_with_a_comma",
    "expect_unknown",
    "te_underscore_name",  # named HTTP_TRANSFER_ENCODING, beside a Content-Length
}
# A request line or header line over the limit also reaches the app (hyper limits only the
# whole head, 32 KiB here); the app answers it itself, so it is in test_contract's list.


@pytest.mark.slow
def test_what_bare_granian_accepts_is_what_docs_production_md_says(tmp_path):
    """granian alone, for the record: why launchers/granian_guard.py exists.

    When a granian upgrade changes this, update docs/production.md (and maybe the guard).
    The vectors granian's environ cannot show are in tests/test_contract.py: they pass
    the guard too.
    """
    port = free_port()
    record = tmp_path / "record"
    record.touch()
    env = granian_env(port, RECORD_FILE=record)
    args = [PYTHON, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1"]
    args += ["--port", str(port), "tests.apps.recording:app"]
    with running(args, env, port):
        outcomes = run_corpus(port, lambda: record.read_text().splitlines())
    smuggled = {n for n, o in outcomes.items() if any("/smuggled" in p for p in o.app_saw)}
    reached = {n for n, o in outcomes.items() if o.app_saw and n not in SERVED | HALF_CLOSED}
    passes_the_guard = PRODUCTION_DEPARTURES["granian"].reaches_the_app
    assert smuggled == BARE_GRANIAN_SMUGGLES
    assert reached - smuggled - passes_the_guard == BARE_GRANIAN_PASSES_ON
