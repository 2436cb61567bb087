"""The dev server's request handler (launchers/dev_handler.py): no request can crash it.

ALLOW_DEV_SERVER lets the dev server face the internet. On its own, Werkzeug's
server died of a segfault on a chunked body cut short inside a chunk (its
dechunker writes a short read into the caller's buffer, shrinking it, and
reports the full size: stray heap bytes for a small read, a crash for a large
one), and wrote a bare body without a status line to ``HTTP/2.0`` and HTTP/0.9
request lines. The corpus of hostile requests runs against it in
tests/test_contract.py; here the chunked body reader itself, and the live server.
"""

from __future__ import annotations

import io
import json
import subprocess
import textwrap

import pytest

from launchers.dev_handler import ChunkedBody
from tests.live import production_env, sigterm_during_slow_uploads
from tests.raw_http import error_lines, talk
from tests.support import (
    PYTHON,
    ROOT,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
    process_tree,
    running,
)

HOST = b"Host: 127.0.0.1\r\n"
CHUNKED_POST = b"POST /api/echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"


def body(raw: bytes) -> ChunkedBody:
    return ChunkedBody(io.BufferedReader(io.BytesIO(raw)))


def test_a_chunked_body_is_read_with_its_extensions_and_trailers():
    raw = b'4;name="a value"\r\n{"a"\r\n5\r\n: 12}\r\n0\r\nX-Checksum: abc\r\n\r\nnext'
    assert body(raw).read() == b'{"a": 12}'


@pytest.mark.parametrize("read_size", [1, 7, 65536, 50_000_000])
@pytest.mark.parametrize("declared", [b"10", b"fffff", b"fffffff"])
def test_a_body_cut_short_inside_a_chunk_is_an_error_never_stray_bytes(declared, read_size):
    stream = body(declared + b"\r\n{}")
    with pytest.raises(OSError, match="ended inside a chunk"):
        while stream.read(read_size):
            pass


@pytest.mark.parametrize(
    "chunks",
    [b"0x3\r\nabc\r\n0\r\n\r\n", b"+3\r\nabc\r\n0\r\n\r\n", b"0_3\r\nabc\r\n0\r\n\r\n"]
    + [b" 3\r\nabc\r\n0\r\n\r\n", b"-3\r\nabc\r\n0\r\n\r\n", b"3\nabc\n0\n\n"]
    + [b"3\r\nabcdef\r\n0\r\n\r\n", b"2;=x\r\n{}\r\n0\r\n\r\n", b"2\r\n{}\r\n0 \r\n\r\n"],
    ids=["0x", "plus", "underscore", "space", "negative", "bare LF", "too long", "ext", "0 "],
)
def test_a_malformed_chunked_body_is_an_error(chunks):
    with pytest.raises(OSError):
        body(chunks).read()


@pytest.mark.parametrize(
    "trailer", [b"Content-Length: 5", b"Transfer-Encoding: chunked", b"Host: x", b"GET / HTTP/1.1"]
)
def test_a_forbidden_or_malformed_trailer_is_an_error(trailer):
    with pytest.raises(OSError):
        body(b"2\r\n{}\r\n0\r\n" + trailer + b"\r\n\r\n").read()


WERKZEUG_SHORT_CHUNK = textwrap.dedent(
    """
    import io
    from werkzeug.serving import DechunkedInput
    stream = DechunkedInput(io.BufferedReader(io.BytesIO(b"fffff\\r\\n{}")))
    print(len(stream.read(65536)))
    """
)


def test_werkzeugs_own_dechunker_still_reads_past_a_short_chunk():
    """For the record, in a subprocess (a larger read segfaults): 2 bytes arrived, 65536 came
    back, the rest from the heap. When a Werkzeug upgrade fixes this, ChunkedBody may go."""
    result = subprocess.run(
        [PYTHON, "-c", WERKZEUG_SHORT_CHUNK], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "65536", result


@pytest.fixture(scope="module")
def dev_server():
    """The dev server as ALLOW_DEV_SERVER runs it in production."""
    port = free_port()
    with running([PYTHON, "main.py"], production_env("dev", port, LOG_FORMAT="json"), port) as s:
        yield port, s


@pytest.mark.parametrize("declared", [b"10", b"fffff", b"fffffff", b"ffffffffffffffff"])
def test_a_chunked_body_cut_short_is_a_400_and_the_server_lives_on(dev_server, declared):
    port, server = dev_server
    got = talk(port, CHUNKED_POST + declared + b"\r\n{}", half_close=True)
    assert got.statuses and 400 <= got.statuses[0] < 500, got
    assert server.proc.poll() is None, server.stderr
    assert get(port, "/healthz").status == 200
    log = server.stdout + server.stderr
    assert_no_traceback(log)
    assert not error_lines(log), error_lines(log)


@pytest.mark.parametrize(
    "request_line", [b"GET /healthz HTTP/2.0", b"GET /healthz HTTP/0.9", b"GET /healthz"]
)
def test_an_unsupported_version_gets_a_whole_http_1_1_answer(dev_server, request_line):
    port, _ = dev_server
    with_head = talk(port, request_line + b"\r\n" + HOST + b"\r\n")
    assert with_head.statuses == [400], with_head
    assert with_head.body_sizes[0] > 0 and with_head.closed


# --- python main.py in development: the reloader and the debugger on ---------------------


def development_env(port: int) -> dict[str, str]:
    return clean_env(HOST="127.0.0.1", PORT=port)  # the defaults: dev server, FLASK_DEBUG on


@pytest.mark.slow
def test_sigterm_to_the_reloader_drains_the_serving_child():
    """SIGTERM reaches the reloader's parent (what a terminal's `kill` or a supervisor
    sends); the child serving the requests drains them and both exit 0."""
    port = free_port()
    with running([PYTHON, "main.py"], development_env(port), port) as server:
        assert len(process_tree(server.pid)) == 2  # the reloader's parent and its child
        ready, answers, code, log = sigterm_during_slow_uploads(server, port)
    assert code == 0, log[-2000:]
    assert ready == "refused", (ready, log[-2000:])  # no listener left: both copies closed
    assert [status for status, _, _ in answers] == [200, 200, 200], log[-2000:]
    for _, sent, body in answers:
        assert json.loads(body) == {"received": json.loads(sent)}
    assert "drained: every request in flight was answered" in log, log[-2000:]
    assert_no_traceback(log)


@pytest.mark.slow
def test_the_development_servers_lines_carry_no_colour_codes_when_redirected():
    port = free_port()
    with running([PYTHON, "main.py"], development_env(port), port) as server:
        get(port, "/nothing-here")
        log = server.stdout + server.stderr
    assert "Running on http://127.0.0.1:" in log, log
    assert "\x1b[" not in log, repr(log[-1500:])


def test_the_development_server_as_root_on_every_interface_warns_in_one_line(monkeypatch, caplog):
    from launchers import dev
    from settings import load_settings

    served = []
    monkeypatch.setattr(dev, "effective_uid", lambda: 0)
    monkeypatch.setattr(dev, "serve_with_reloader", lambda *args: served.append(args))
    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        caplog.clear()
        dev.serve(load_settings(clean_env(HOST=host), dotenv_path=None), app=object())
        lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert bool(lines) == warned, lines
        if warned:
            (line,) = lines
            assert "\n" not in line and f"AS ROOT ON {host}:5000" in line, line
    assert len(served) == 2


def test_a_client_that_sends_more_and_waits_still_has_its_connection_closed():
    """After the response Werkzeug reads what the client sent past its request; that read
    waited for the client to hang up, so a client that pipelined a second request and
    waited for its answer kept the thread and the connection. Here the extra bytes are
    in the socket, not the reader's buffer, when the response goes out, as they are when
    they arrive a moment after the request."""
    import select
    import socket
    import threading

    from werkzeug.serving import make_server

    from launchers.dev_handler import StrictRequestHandler

    running, sent = threading.Event(), threading.Event()

    def app(environ, start_response):
        running.set()  # the request was read: what the client sends now stays in the socket
        assert sent.wait(5)
        select.select([environ["werkzeug.socket"]], [], [], 5)  # the extra bytes are in
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=StrictRequestHandler)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
            assert running.wait(5)
            client.sendall(b"GET /next HTTP/1.1\r\n" + HOST + b"\r\n")
            sent.set()
            received = b""
            while chunk := client.recv(65536):  # TimeoutError after 5 s: left open
                received += chunk
        assert received.startswith(b"HTTP/1.1 200") and received.endswith(b"ok")
    finally:
        server.shutdown()
        serving.join(5)
        server.server_close()
