"""The granian launcher as a real server: ``python main.py`` with APP_LAUNCHER=granian.

The same contract as every production launcher: the endpoints, the headers,
the request limits, slow clients, SIGTERM draining requests in flight (exit 0),
SIGINT stopping at once, and a clear message when granian is not installed.
"""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import textwrap
import time

import pytest

from tests.live import sigterm_during_slow_uploads, start_upload
from tests.support import (
    PYTHON,
    ROOT,
    SECRET,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
    listening_ports,
    process_tree,
    raw_exchange,
    request,
    running,
)

pytest.importorskip(
    "granian", reason="granian is optional: pip install -r requirements-granian.txt"
)


def granian_env(port: int, **extra) -> dict[str, str]:
    values = {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "APP_LAUNCHER": "granian",
        "HOST": "127.0.0.1",
        "PORT": port,
        "WEB_CONCURRENCY": 2,
        **extra,
    }
    return clean_env(**values)


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1."), raw[:200]
    return int(raw.split(b" ", 2)[1])


def test_options_follow_the_settings():
    from launchers.granian import options
    from launchers.settings import load_settings

    settings = load_settings(
        granian_env(8000, WEB_CONCURRENCY=3, WEB_THREADS=2, GRACEFUL_TIMEOUT=2.5, KEEPALIVE=7),
        dotenv_path=None,
    )
    opts = options(settings)
    assert opts["workers"] == 3 and opts["blocking_threads"] == 2
    assert opts["workers_kill_timeout"] == math.ceil(2.5)
    assert opts["http1_settings"].header_read_timeout == 7000
    assert (opts["address"], opts["port"]) == ("127.0.0.1", 8000)
    assert opts["log_access"] is False  # the app writes the access log


def test_main_serves_the_contract_with_granian():
    port = free_port()
    with running([PYTHON, "main.py"], granian_env(port), port) as server:
        index = get(port, "/")
        assert index.status == 200 and "granian" in index.text
        assert get(port, "/healthz").json() == {"status": "ok"}
        assert get(port, "/readyz").status == 200
        info = get(port, "/api/info", headers={"X-Request-ID": "abc.123"})
        assert info.json()["launcher"] == "granian"
        assert info.json()["remote_addr"] == "127.0.0.1"
        assert info.headers["x-request-id"] == "abc.123"
        for name in ("x-content-type-options", "x-frame-options", "referrer-policy"):
            assert name in info.headers, info.headers
        assert "strict-transport-security" not in info.headers
        echo = request(
            "POST", port, "/api/echo", body=b'{"x": [1, 2]}', headers={"Content-Type": "x"}
        )
        assert echo.status == 200 and echo.json() == {"received": {"x": [1, 2]}}
        not_json = request("POST", port, "/api/echo", body=b"{nope")
        assert not_json.status == 400 and "error" in not_json.json()
        missing = get(port, "/api/missing")
        assert missing.status == 404 and "error" in missing.json()
        assert get(port, "/missing").headers["content-type"].startswith("text/html")
        pids = process_tree(server.pid)
        assert len(pids) >= 3, pids  # the main process and WEB_CONCURRENCY=2 workers
        assert listening_ports(pids) == {("127.0.0.1", port)}


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
        assert get(port, "/healthz").status == 200


@pytest.mark.slow
def test_stalled_clients_do_not_stop_ordinary_requests():
    port = free_port()
    with running([PYTHON, "main.py"], granian_env(port), port):
        stalled = []
        try:
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never more
                stalled.append(s)
            answered = 0
            for _ in range(20):
                try:
                    answered += get(port, "/healthz", timeout=5).status == 200
                except OSError:
                    pass
        finally:
            for s in stalled:
                s.close()
    assert answered == 20


@pytest.mark.slow
def test_sigterm_lets_uploads_in_flight_finish_then_exits_0():
    port = free_port()
    env = granian_env(port, GRACEFUL_TIMEOUT=8)
    with running([PYTHON, "main.py"], env, port) as server:
        ready, answers, code, log = sigterm_during_slow_uploads(server, port, 3)
    assert ready in ("503", "refused"), (ready, log)
    for status, sent, body in answers:
        assert status == 200, (status, body[:200], log)
        assert json.loads(body) == {"received": json.loads(sent)}
    assert code == 0, log
    assert_no_traceback(log)


@pytest.mark.slow
def test_sigterm_gives_up_on_a_stalled_request_after_graceful_timeout():
    port = free_port()
    env = granian_env(port, GRACEFUL_TIMEOUT=2)
    with running([PYTHON, "main.py"], env, port) as server:
        sock, _, _ = start_upload(port, 0)  # never finished
        try:
            time.sleep(0.3)
            began = time.monotonic()
            server.signal(signal.SIGTERM)
            code = server.wait_exit(15)  # without a kill timeout granian waits for ever
            took = time.monotonic() - began
        finally:
            sock.close()
        log = server.stdout + server.stderr
    assert took < 2 + 3, (took, log)
    assert code == 0, log
    assert_no_traceback(log)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigint_stops_at_once_even_with_a_request_in_flight():
    port = free_port()
    env = granian_env(port, GRACEFUL_TIMEOUT=20)
    with running([PYTHON, "main.py"], env, port) as server:
        workers = process_tree(server.pid)[1:]
        sock, _, _ = start_upload(port, 0)  # never finished: a drain would wait 20 s
        try:
            time.sleep(0.3)
            began = time.monotonic()
            server.signal(signal.SIGINT)
            code = server.wait_exit(10)
            took = time.monotonic() - began
        finally:
            sock.close()
        deadline = time.monotonic() + 3
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in workers if alive(pid)]
        log = server.stdout + server.stderr
    assert took < 5, (took, log)  # a drain would have taken GRACEFUL_TIMEOUT, 20 s
    assert code == 0, log
    assert_no_traceback(log)
    assert workers and not left, (workers, left, log)


HIDE_GRANIAN = textwrap.dedent(
    """
    import sys

    class HideGranian:
        # As if granian were not installed: its import fails the way a missing package does.
        def find_spec(self, name, path=None, target=None):
            if name == "granian" or name.startswith("granian."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideGranian())
    """
)


def test_a_missing_granian_is_one_clear_message(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE_GRANIAN)
    env = granian_env(free_port(), PYTHONPATH=str(tmp_path))
    hidden = subprocess.run(
        [PYTHON, "-c", "import granian"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert hidden.returncode != 0, "the sitecustomize did not hide granian"
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
