"""What is granian's own: its options, its head-limit wrapper, its kill timeout, its absence.

What granian must do as every launcher does is tests/test_contract.py.
"""

from __future__ import annotations

import math
import signal
import subprocess
import textwrap
import time

from tests.live import production_env, start_upload
from tests.support import (
    PYTHON,
    ROOT,
    assert_no_traceback,
    free_port,
    raw_exchange,
    request,
    running,
)


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
    assert opts["workers"] == 3 and opts["blocking_threads"] == 2
    assert opts["workers_kill_timeout"] == math.ceil(2.5)
    assert opts["http1_settings"].header_read_timeout == 7000
    assert (opts["address"], opts["port"]) == ("127.0.0.1", 8000)
    assert opts["log_access"] is False  # the app writes the access log


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
