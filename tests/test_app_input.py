"""What a client may send the app, through Flask's test client: each gets a 4xx, never a
5xx, and every answer carries the app's headers.

JSON that is not JSON (NaN, Infinity, nesting past any sane depth), a Host the app
does not serve, request heads over the limits, bodies that cannot be read, and the
``Connection: close`` that ends a connection whose body was left unread.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from wsgiref.util import is_hop_by_hop

import pytest
from flask import Flask, jsonify
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app import create_app, lifecycle
from app.limits import DRAIN_BYTES, HEADER_FIELDS, HEADER_LINE_BYTES, REQUEST_LINE_BYTES
from app.middleware import leave_head_limits_to_server
from app.strict_json import MAX_DEPTH

SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy")


def assert_our_error(r, status: int, *, json: bool) -> None:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    for name in (*SECURITY_HEADERS, "X-Request-ID"):
        assert r.headers.get(name), (name, dict(r.headers))
    if json:
        assert r.is_json and r.json["status"] == status
    else:
        assert r.mimetype == "text/html" and str(status) in r.get_data(as_text=True)


# --- JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b'{"a": NaN}', b"[Infinity]", b"[-Infinity]", b"[1e999]", b"[-1e999]", b'{"a": [1.5, NaN]}'],
)
def test_what_python_reads_but_is_not_json_is_a_400(client, body):
    assert_our_error(client.post("/api/echo", data=body), 400, json=True)


@pytest.mark.parametrize("body", [b"[" * 50_000, b'{"a":' * 50_000, b"[" * 2000 + b"]" * 2000])
def test_json_nested_past_the_recursion_limit_is_a_400_not_a_500(client, body):
    r = client.post("/api/echo", data=body)
    assert_our_error(r, 400, json=True)
    assert "Recursion" not in r.get_data(as_text=True)


def test_json_nesting_is_accepted_up_to_its_limit_and_echoed(client):
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert client.post("/api/echo", data=deepest).status_code == 200
    one_more = b"[" + deepest + b"]"
    assert_our_error(client.post("/api/echo", data=one_more), 400, json=True)
    wide = b"[" + b",".join([b"[[1]]"] * 5000) + b"]"  # many brackets, shallow
    assert client.post("/api/echo", data=wide).json == {"received": [[[1]]] * 5000}


def test_ordinary_numbers_still_parse(client):
    body = b'{"f": 1.5, "e": 1e300, "n": -0.0, "i": 12345678901234567890}'
    assert client.post("/api/echo", data=body).json["received"]["e"] == 1e300


def test_a_response_never_contains_nan():
    app = create_app({"APP_ENV": "testing", "TESTING": False})

    @app.get("/api/nan")
    def nan():
        return jsonify(value=float("nan"))

    r = app.test_client().get("/api/nan")
    assert r.status_code == 500 and b"NaN" not in r.data


# --- Host ------------------------------------------------------------------------------


@pytest.fixture
def trusting_example() -> Flask:
    return create_app({"APP_ENV": "testing", "TRUSTED_HOSTS": "example.com,.example.org"})


@pytest.mark.parametrize("host", ["example.com", "example.com:8443", "www.example.org"])
def test_a_trusted_host_is_served(trusting_example, host):
    r = trusting_example.test_client().get("/api/info", headers={"Host": host})
    assert r.status_code == 200 and r.json["host"] == host


@pytest.mark.parametrize("path, json", [("/api/info", True), ("/", False), ("/static//x", False)])
def test_any_other_host_is_a_400_with_the_apps_error(trusting_example, path, json):
    r = trusting_example.test_client().get(path, headers={"Host": "evil.example"})
    assert_our_error(r, 400, json=json)
    assert "Location" not in r.headers


def test_a_forwarded_host_is_checked_when_the_proxy_is_trusted():
    app = create_app(
        {"APP_ENV": "testing", "TRUSTED_HOSTS": "example.com", "TRUSTED_PROXY_HOPS": 1}
    )
    client = app.test_client()
    evil = client.get(
        "/api/info", headers={"Host": "example.com", "X-Forwarded-Host": "evil.example"}
    )
    assert_our_error(evil, 400, json=True)
    ok = client.get("/api/info", headers={"Host": "10.0.0.5", "X-Forwarded-Host": "example.com"})
    assert ok.status_code == 200


def test_without_trusted_hosts_any_host_is_served(client):
    r = client.get("/static//style.css", headers={"Host": "evil.example"})
    assert r.status_code in (200, 308)  # the default: TRUSTED_HOSTS empty


# --- the request head ------------------------------------------------------------------


def call(
    app: Flask, path: str = "/healthz", *, method: str = "GET", headers=(), **environ
) -> tuple[int, dict, bytes]:
    """One request through the WSGI app, its environ built here to the byte."""
    built = EnvironBuilder(path=path, method=method, headers=list(headers)).get_environ()
    built.pop("HTTP_USER_AGENT", None)
    built.update(environ)
    body, status, response_headers = run_wsgi_app(app, built)
    data = b"".join(body)
    getattr(body, "close", lambda: None)()
    return int(status[:3]), dict(response_headers), data


def target_of(line_bytes: int, prefix: str) -> str:
    """A path that makes ``GET <path> HTTP/1.1`` exactly ``line_bytes`` long."""
    return prefix + "a" * (line_bytes - len("GET ") - len(prefix) - len(" HTTP/1.1"))


@pytest.mark.parametrize("prefix, json", [("/api/", True), ("/", False)])
def test_a_request_line_over_the_limit_is_the_apps_414(app, prefix, json):
    at_limit = target_of(REQUEST_LINE_BYTES, prefix)
    assert call(app, at_limit, RAW_URI=at_limit)[0] == 404
    over = at_limit + "a"
    status, headers, body = call(app, over, RAW_URI=over)
    assert status == 414 and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Request-ID"] and (b'"status":414' in body) == json


def test_without_raw_uri_the_target_is_quoted_again(app):
    # Each "é" is 6 bytes on the request line as %C3%A9; PATH_INFO holds its 2 bytes.
    def path(characters: int) -> str:
        return "/" + "\u00e9".encode().decode("latin-1") * characters

    fits = (REQUEST_LINE_BYTES - len("GET / HTTP/1.1")) // 6
    unknown = {"RAW_URI": None, "REQUEST_URI": None}
    assert call(app, PATH_INFO=path(fits), **unknown)[0] == 404
    assert call(app, PATH_INFO=path(fits + 1), **unknown)[0] == 414


def header_of(line_bytes: int) -> tuple[str, str]:
    """A header whose line ``X-Pad: value`` plus CRLF is ``line_bytes`` long."""
    return "X-Pad", "v" * (line_bytes - len("X-Pad: ") - 2)


def test_a_header_line_over_the_limit_is_a_431(app):
    assert call(app, headers=[header_of(HEADER_LINE_BYTES)])[0] == 200
    status, headers, _ = call(app, "/api/info", headers=[header_of(HEADER_LINE_BYTES + 1)])
    assert status == 431 and headers["Content-Type"] == "application/json"
    assert headers["X-Frame-Options"] == "DENY"


def test_a_long_header_name_counts_too(app):
    name = "X-" + "n" * (HEADER_LINE_BYTES - len("X-") - 5)  # "name: v" + CRLF, 1 byte over
    assert call(app, headers=[(name, "vv")])[0] == 431


def test_more_header_fields_than_the_limit_is_a_431(app):
    def fields(n: int) -> list[tuple[str, str]]:
        return [(f"X-Field-{i}", "1") for i in range(n - 1)]  # Host is one of them

    assert call(app, headers=fields(HEADER_FIELDS))[0] == 200
    assert call(app, headers=fields(HEADER_FIELDS + 1))[0] == 431


def test_a_server_that_refuses_the_heads_itself_is_left_to_it(app):
    """launchers/gunicorn.py and launchers/waitress.py say so when their parser holds
    app.limits' limits: the app stops checking them again on every request."""
    long_line = target_of(REQUEST_LINE_BYTES + 1, "/")
    assert leave_head_limits_to_server(app) is True
    assert call(app, headers=[header_of(HEADER_LINE_BYTES + 1)])[0] == 200
    assert call(app, long_line, RAW_URI=long_line)[0] == 404
    other = create_app({"APP_ENV": "testing"})  # each app by itself
    assert call(other, headers=[header_of(HEADER_LINE_BYTES + 1)])[0] == 431


def test_an_app_without_the_layer_is_not_changed():
    bare = Flask(__name__)
    assert leave_head_limits_to_server(bare) is False
    assert leave_head_limits_to_server(lambda environ, start_response: []) is False


@pytest.mark.parametrize(
    "query",
    ["__debugger__=yes&cmd=resource&f=style.css", "%5F%5Fdebugger%5F%5F=yes&cmd=printpin"],
)
def test_debugger_urls_are_404_without_the_debugger(client, query):
    r = client.get(f"/?{query}")
    assert_our_error(r, 404, json=False)
    assert client.get("/?debugger=1").status_code == 200


# --- bodies ----------------------------------------------------------------------------


class BrokenStream(io.RawIOBase):
    """A server's wsgi.input whose chunked framing is malformed."""

    def read(self, size: int = -1) -> bytes:
        raise ValueError("Invalid chunk size")

    def readline(self, size: int = -1) -> bytes:
        raise ValueError("Invalid chunk size")


def post_chunked(app: Flask, path: str, body: io.RawIOBase | bytes) -> tuple[int, dict, bytes]:
    """A POST as gunicorn hands over a chunked one: no Content-Length, a terminated stream."""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    return call(
        app,
        path,
        method="POST",
        headers=[("Transfer-Encoding", "chunked")],
        **{"wsgi.input": stream, "wsgi.input_terminated": True},
    )


def test_a_body_the_server_cannot_read_is_a_400_and_closes_the_connection(app):
    status, headers, body = post_chunked(app, "/api/echo", BrokenStream())
    assert status == 400 and b'"status":400' in body and headers["X-Request-ID"]
    assert headers["Connection"] == "close"


def test_an_unread_malformed_body_closes_the_connection(app):
    status, headers, _ = post_chunked(app, "/healthz", BrokenStream())  # 405: nothing read
    assert status == 405 and headers["Connection"] == "close"


def test_an_unread_body_is_drained_and_the_connection_kept(client):
    small = client.post("/healthz", data=b"x" * 1000)
    assert small.status_code == 405 and "Connection" not in small.headers
    large = client.post("/healthz", data=b"x" * (DRAIN_BYTES + 1))
    assert large.status_code == 405 and large.headers["Connection"] == "close"
    read = client.post("/api/echo", json={"a": 1})
    assert read.status_code == 200 and "Connection" not in read.headers


@pytest.mark.parametrize("extra, status", [(0, 200), (1, 413)])
def test_a_chunked_body_over_the_limit_is_a_413_at_the_limit_200(extra, status):
    app = create_app({"APP_ENV": "testing", "MAX_CONTENT_LENGTH": 1000})
    body = b'"' + b"x" * (1000 - 2 + extra) + b'"'
    got, headers, answer = post_chunked(app, "/api/echo", body)
    assert got == status and headers["X-Content-Type-Options"] == "nosniff"
    if status == 413:
        assert b'"status":413' in answer and headers["Connection"] == "close"


# --- bookkeeping -----------------------------------------------------------------------


def test_a_request_is_in_flight_while_it_runs_and_only_then():
    app = create_app({"APP_ENV": "testing"})

    @app.get("/api/in-flight")
    def in_flight():
        return jsonify(lifecycle.requests_in_flight())

    seen = app.test_client().get("/api/in-flight", headers={"X-Request-ID": "rid-1"}).json
    assert len(seen) == 1 and seen[0].startswith("GET /api/in-flight (") and "id=rid-1" in seen[0]
    assert lifecycle.requests_in_flight() == []


def test_a_view_reads_the_request_id_the_response_carries(client):
    r = client.get("/api/info", headers={"X-Request-ID": "not valid!"})
    assert r.json["request_id"] == r.headers["X-Request-ID"] != "not valid!"


@pytest.fixture
def view_headers(app: Flask) -> Iterator[Flask]:
    @app.get("/framed")
    def framed():
        response = jsonify(ok=True)
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["X-Request-ID"] = "set-by-the-view"
        return response

    yield app


def test_a_security_header_a_view_sets_is_kept_once(view_headers):
    r = view_headers.test_client().get("/framed", headers={"X-Request-ID": "rid-9"})
    assert r.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers.getlist("X-Request-ID") == ["rid-9"]  # always the request's own


def test_an_error_raised_in_a_view_still_gets_the_headers():
    app = create_app({"APP_ENV": "production", "SECRET_KEY": "s" * 32})

    @app.get("/boom")
    def boom():
        raise RuntimeError("detail")

    assert_our_error(app.test_client().get("/boom"), 500, json=False)


def test_a_server_that_refuses_hop_by_hop_headers_gets_the_answer_without_it(app):
    """PEP 3333 keeps Connection to the server; waitress and wsgiref assert so."""
    answered = []

    def strict_start_response(status, headers, exc_info=None):
        if any(is_hop_by_hop(name) for name, _ in headers):
            raise AssertionError(f"hop-by-hop header in {headers}")
        answered.append((status, headers))

    environ = EnvironBuilder(path="/healthz", method="POST", data=b"x" * (DRAIN_BYTES + 1))
    b"".join(app(environ.get_environ(), strict_start_response))
    ((status, headers),) = answered
    assert status.startswith("405") and dict(headers)["X-Request-ID"]
