"""The access log, in process: one line per request whatever its answer, its fields in
both formats, and nothing a client sends can write a line of its own (CWE-117).

What real servers write to stdout and stderr is in tests/test_logs_live.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from app import create_app
from app.logs import ACCESS, TEXT_FORMAT, TextFormatter, escape, make_formatter
from tests.support import SECRET

FIELDS = {"method", "path", "status", "duration_ms", "request_id", "remote_addr"}


@pytest.fixture(params=["text", "json"])
def log_format(request) -> str:
    return request.param


@pytest.fixture
def lines(log_format) -> Iterator[Callable[[], list[str]]]:
    """The access lines written so far in the test, formatted as LOG_FORMAT says."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(make_formatter(log_format))
    ACCESS.addHandler(handler)
    try:
        yield lambda: out.getvalue().splitlines()
    finally:
        ACCESS.removeHandler(handler)


@pytest.fixture
def client(log_format):
    app = create_app({"APP_ENV": "production", "SECRET_KEY": SECRET, "LOG_FORMAT": log_format})

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("boom")

    return app.test_client()


FORGED = '/x\r\n2026-01-01 00:00:00,000 [1] [INFO] app.access: 1.2.3.4 "GET /admin" 200'


def test_a_path_cannot_write_a_line_of_its_own(client, lines, log_format):
    client.get(FORGED.replace("\r", "%0d").replace("\n", "%0a").replace(" ", "%20"))
    client.get("/healthz")
    assert len(lines()) == 2, lines()
    first = lines()[0]
    assert "\r" not in first and "\n" not in first
    if log_format == "json":
        assert json.loads(first)["path"] == FORGED  # kept exactly, escaped by JSON
    else:
        assert '"GET /x\\x0D\\x0A2026-01-01' in first and "\\x22GET /admin\\x22" in first


@pytest.mark.parametrize(
    "text, escaped",
    [
        ("/plain/path?q=1", "/plain/path?q=1"),
        ("/a\rb\nc", "/a\\x0Db\\x0Ac"),
        ("/tab\there", "/tab\\x09here"),
        ('/quote"and\\back', "/quote\\x22and\\x5Cback"),
        ("/\x1b[31mred", "/\\x1B[31mred"),
        ("/nel\x85ls\u2028ps\u2029", "/nel\\x85ls\\u2028ps\\u2029"),
        ("/caf\u00e9", "/caf\u00e9"),
    ],
)
def test_escape(text, escaped):
    assert escape(text) == escaped


def test_a_forwarded_address_is_escaped_too(lines, log_format):
    app = create_app({"APP_ENV": "testing", "TRUSTED_PROXY_HOPS": 1, "LOG_FORMAT": log_format})
    # A terminal escape (clear the screen) that a server passes on in a header value.
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.9\x1b[2J"}
    app.test_client().get("/healthz", environ_overrides=forwarded)
    (line,) = lines()
    assert "\x1b" not in line
    if log_format == "text":
        assert line.split(" app.access: ")[1].startswith('203.0.113.9\\x1B[2J "GET')


def test_one_line_per_request_whatever_the_answer(client, lines, log_format):
    sent = [
        (client.get("/healthz"), 200),
        (client.get("/missing"), 404),
        (client.get("/api/echo"), 405),
        (client.post("/api/echo", data=b"{nope"), 400),
        (client.post("/api/echo", data=b"1" * (2 * 1024 * 1024)), 413),
        (client.get("/api/" + "a" * 9000), 414),
        (client.get("/api/boom"), 500),
    ]
    assert [r.status_code for r, _ in sent] == [status for _, status in sent]
    assert len(lines()) == len(sent), lines()
    for (r, status), line in zip(sent, lines(), strict=True):
        rid = r.headers["X-Request-ID"]
        if log_format == "json":
            entry = json.loads(line)
            assert FIELDS <= set(entry) and entry["logger"] == "app.access"
            assert (entry["status"], entry["request_id"]) == (status, rid)
            assert entry["remote_addr"] == "127.0.0.1" and entry["duration_ms"] >= 0
        else:
            assert f'" {status} ' in line and line.endswith(f"id={rid}")
            assert line.split(" app.access: ")[1].startswith('127.0.0.1 "')


def test_the_text_line_names_method_target_status_duration_and_id(client, lines, log_format):
    client.get("/healthz?probe=1", headers={"X-Request-ID": "req-7"})
    (line,) = lines()
    if log_format == "json":
        entry = json.loads(line)
        assert (entry["method"], entry["path"]) == ("GET", "/healthz")
        assert entry["message"].startswith('127.0.0.1 "GET /healthz?probe=1" 200 ')
    else:
        message = line.split(" [INFO] app.access: ")[1]
        assert message.startswith('127.0.0.1 "GET /healthz?probe=1" 200 ')
        assert message.endswith("ms id=req-7")


def test_above_info_no_access_line_is_written(lines):
    app = create_app({"APP_ENV": "testing", "LOG_LEVEL": "warning"})
    try:
        app.test_client().get("/healthz")
    finally:
        create_app({"APP_ENV": "testing"})  # back to info for the other tests
    assert lines() == []


def test_the_text_formatter_writes_what_logging_would_with_text_format():
    try:
        raise ValueError("x")
    except ValueError:
        failed = logging.LogRecord(
            "app.x", logging.ERROR, __file__, 1, "no %s", ("y",), sys.exc_info()
        )
    plain = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    for record in (plain, failed):
        assert TextFormatter().format(record) == logging.Formatter(TEXT_FORMAT).format(record)


def test_json_fields_are_what_the_client_sent(lines, log_format):
    app = create_app({"APP_ENV": "testing", "LOG_FORMAT": log_format})
    app.test_client().get("/a\x7fb")
    (line,) = lines()
    if log_format == "json":
        assert json.loads(line)["path"] == "/a\x7fb"
    else:
        assert "/a\\x7Fb" in line


@pytest.fixture
def own_handler(log_format, monkeypatch) -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """The access log as configure_logging sets it up, its stream captured. pytest adds
    its own handlers to every logger when each test starts: ``alone`` takes them off."""
    from app import logs

    logs.configure_logging("info", log_format)
    handler = logs._access_handler
    out = io.StringIO()
    previous = handler.setStream(out)
    try:
        yield handler, out
    finally:
        handler.setStream(previous)


def alone(handler: logging.Handler, monkeypatch) -> None:
    monkeypatch.setattr(ACCESS, "handlers", [handler])


ACCESS_ARGS = ("GET", "/a\x1bb", "q=1", 404, 1.25, "rid-1", None)


def test_the_access_line_written_directly_is_the_records_line(own_handler, monkeypatch):
    """With only its own handler, the line is formatted without a record (app/logs.py);
    a filter on app.access makes log_access hand it a record: both write the same."""
    from app import logs

    handler, out = own_handler
    alone(handler, monkeypatch)
    monkeypatch.setattr(logs.time, "time", lambda: 1764650000.987654)
    logs.log_access(*ACCESS_ARGS)
    records = []
    ACCESS.addFilter(lambda record: records.append(record) or True)
    try:
        logs.log_access(*ACCESS_ARGS)
    finally:
        ACCESS.filters.clear()
    direct, through_a_record = out.getvalue().splitlines()
    assert direct == through_a_record
    assert "\\x1B" in direct
    assert len(records) == 1 and records[0].status == 404


def test_no_record_is_made_for_the_access_log_as_configured(own_handler, monkeypatch):
    from app import logs

    handler, out = own_handler
    alone(handler, monkeypatch)

    def no_record(*args, **kwargs):
        raise AssertionError("a record was made")

    monkeypatch.setattr(logs, "AccessRecord", no_record)
    logs.log_access(*ACCESS_ARGS)
    assert "rid-1" in out.getvalue()


def test_a_failed_write_is_reported_with_its_record_as_logging_reports_it(own_handler, monkeypatch):
    from app import logs

    handler, _ = own_handler
    alone(handler, monkeypatch)

    class Broken(io.StringIO):
        def write(self, text):
            raise OSError("disk full")

    reported = []
    handler.setStream(Broken())
    handler.handleError = reported.append
    try:
        logs.log_access(*ACCESS_ARGS)
    finally:
        del handler.handleError
    (record,) = reported
    assert record.request_id == "rid-1" and "404" in record.getMessage()


def test_a_forkers_handler_or_filter_on_app_access_gets_records(own_handler, monkeypatch):
    from app import logs

    handler, out = own_handler
    alone(handler, monkeypatch)
    got = []
    extra = logging.Handler()
    extra.emit = got.append
    ACCESS.addHandler(extra)
    try:
        logs.log_access(*ACCESS_ARGS)
    finally:
        ACCESS.removeHandler(extra)
    assert [r.path for r in got] == ["/a\x1bb"]
    assert "rid-1" in out.getvalue()  # and the own handler still writes its line


@pytest.fixture
def pipe_handler(own_handler) -> Iterator[tuple[logging.Handler, Callable[[], str]]]:
    """The access log's own handler writing to a pipe, as stdout is under a container
    or a process manager; the second item closes the pipe and returns what it carried."""
    handler, _ = own_handler
    read_end, write_end = os.pipe()
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 - closed by carried()
    handler.setStream(stream)
    got: list[bytes] = []

    def read() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            got.append(pipe.read())

    reader = threading.Thread(target=read)
    reader.start()

    def carried() -> str:
        stream.close()
        reader.join(10)
        return b"".join(got).decode("utf-8")

    yield handler, carried
    if not stream.closed:
        carried()
    handler.stream = io.StringIO()  # own_handler flushes it before it puts its own back


@contextlib.contextmanager
def counted_lock(handler: logging.Handler) -> Iterator[list[int]]:
    """The handler's lock, each time it is taken counted in the list yielded."""
    taken: list[int] = []

    class Counted:
        def __init__(self, lock):
            self.lock = lock

        def __enter__(self):
            taken.append(1)
            return self.lock.__enter__()

        def __exit__(self, *exc):
            return self.lock.__exit__(*exc)

    lock, handler.lock = handler.lock, Counted(handler.lock)
    try:
        yield taken
    finally:
        handler.lock = lock


def test_a_line_to_a_pipe_is_one_write_of_its_descriptor_with_no_lock(pipe_handler, monkeypatch):
    """A lock held across a write that lets go of the GIL queues threads
    (app/line_handler.py): each line is one os.write with no lock, once the handler
    has met the stream (under its lock), and text the stream held comes first."""
    from app import line_handler, logs

    handler, carried = pipe_handler
    alone(handler, monkeypatch)
    handler.stream.write("written earlier\n")  # still in the stream's buffer
    writes = []
    real_write = os.write
    monkeypatch.setattr(
        line_handler.os, "write", lambda fd, data: writes.append(data) or real_write(fd, data)
    )
    with counted_lock(handler) as taken:
        logs.log_access("GET", "/caf\u00e9", "", 200, 1.0, "rid-1", "127.0.0.1")
        assert taken == [1]  # meeting the stream
        logs.log_access("GET", "/next", "", 200, 1.0, "rid-2", "127.0.0.1")
        assert taken == [1]
    earlier, line, _ = carried().splitlines()
    assert earlier == "written earlier"
    shown = json.loads(line)["path"] if line.startswith("{") else line
    assert "/caf\u00e9" in shown and "rid-1" in line  # encoded as the stream encodes
    assert len(writes) == 2


def test_lines_written_at_once_by_many_threads_arrive_whole(pipe_handler, monkeypatch):
    from app import logs

    handler, carried = pipe_handler
    alone(handler, monkeypatch)
    threads, each = 8, 200

    def write(t: int) -> None:
        for i in range(each):
            logs.log_access("GET", "/" + "x" * 200, "", 200, 1.0, f"t{t}-{i}", "127.0.0.1")

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    lines = carried().splitlines()
    assert len(lines) == threads * each
    assert all(("/" + "x" * 200) in line for line in lines)  # none cut or run into another
    ids = {
        (json.loads(x)["request_id"] if x.startswith("{") else x.rsplit("id=", 1)[1].split()[0])
        for x in lines
    }
    assert len(ids) == threads * each


def test_a_failed_write_to_a_descriptor_is_reported_with_its_record(pipe_handler, monkeypatch):
    from app import line_handler, logs

    handler, carried = pipe_handler
    alone(handler, monkeypatch)
    reported = []
    monkeypatch.setattr(handler, "handleError", reported.append)

    def broken(fd: int, data: bytes) -> int:
        raise BrokenPipeError

    monkeypatch.setattr(line_handler.os, "write", broken)
    logs.log_access(*ACCESS_ARGS)
    (record,) = reported
    assert record.request_id == "rid-1"
    assert carried() == ""


def test_a_line_longer_than_a_pipe_writes_whole_is_written_under_the_lock(
    pipe_handler, monkeypatch
):
    from app import line_handler, logs

    handler, carried = pipe_handler
    alone(handler, monkeypatch)
    logs.log_access("GET", "/first", "", 200, 1.0, "rid-first", "127.0.0.1")  # meets the stream
    path = "/" + "y" * line_handler.WHOLE
    with counted_lock(handler) as taken:
        logs.log_access("GET", path, "", 200, 1.0, "rid-long", "127.0.0.1")
        logs.log_access("GET", "/short", "", 200, 1.0, "rid-short", "127.0.0.1")
    _, long_line, short_line = carried().splitlines()
    assert path in long_line and "rid-short" in short_line
    assert taken == [1]  # for the long line only


def test_a_closed_stream_is_not_written_through_its_old_descriptor(pipe_handler, monkeypatch):
    """Once closed, a stream's descriptor number may belong to another file: the write
    fails through the stream, as it did before, and is reported."""
    from app import line_handler, logs

    handler, carried = pipe_handler
    alone(handler, monkeypatch)
    logs.log_access(*ACCESS_ARGS)  # the handler meets the stream and keeps its descriptor
    carried()
    monkeypatch.setattr(line_handler.os, "write", lambda fd, data: pytest.fail("written"))
    reported = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    logs.log_access(*ACCESS_ARGS)
    assert len(reported) == 1
