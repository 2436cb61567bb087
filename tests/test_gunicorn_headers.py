"""What a gunicorn worker does with the app's response headers (launchers/gunicorn_headers.py).

gunicorn's own Response, with the patch and without it: the same headers kept, the
same refusals, the app's ``Connection: close`` obeyed, and the app's constant
security headers not checked again on each response. The live proof (every header
on the wire, under every launcher) is tests/test_headers_live.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName
from gunicorn.http.wsgi import Response

from app.security import CONSTANT_HEADERS, CONTENT_SECURITY_POLICY
from launchers.gunicorn_headers import kept_as_they_are, patch_response_headers

APP_HEADERS = [("Content-Type", "application/json"), ("Content-Length", "16")]
RESPONSE = [*APP_HEADERS, *CONSTANT_HEADERS, ("X-Request-ID", "0123456789abcdef")]


def response() -> Response:
    return Response(SimpleNamespace(version=(1, 1), method="GET"), None, Config())


@pytest.fixture
def checked(monkeypatch):
    return patch_counting(monkeypatch)


def patch_counting(monkeypatch) -> list[tuple[str, str]]:
    """Patches Response as a worker does; the headers gunicorn's own check sees after."""
    process_headers = Response.process_headers
    seen: list[tuple[str, str]] = []

    def counted(self, headers):
        headers = list(headers)
        seen.extend(headers)
        process_headers(self, headers)

    monkeypatch.setattr(Response, "process_headers", counted)
    patch_response_headers()
    seen.clear()  # what the worker checked once, at its start
    return seen


def test_the_app_s_constant_headers_are_kept_as_they_are():
    assert kept_as_they_are(Response.process_headers, CONSTANT_HEADERS) == set(CONSTANT_HEADERS)


@pytest.mark.parametrize(
    "header",
    [
        ("Connection", "close"),  # hop-by-hop: gunicorn drops it
        ("Content-Length", "16"),  # gunicorn reads it
        ("X-Spaced", " value "),  # gunicorn strips it
        ("X-Bad", "a\x00b"),  # gunicorn refuses it
        ("Bad Name", "x"),
    ],
)
def test_a_header_gunicorn_would_change_or_refuse_is_not_kept(header):
    assert kept_as_they_are(Response.process_headers, [header]) == frozenset()


def test_the_response_is_what_gunicorn_makes_of_it_without_the_app_s_headers_checked_again(
    monkeypatch,
):
    without = response()
    without.start_response("200 OK", list(RESPONSE))  # gunicorn's own, unpatched
    checked = patch_counting(monkeypatch)
    patched = response()
    patched.start_response("200 OK", list(RESPONSE))
    assert patched.headers == without.headers == RESPONSE
    assert patched.response_length == without.response_length == 16
    # Neither the constant ones nor the id (letters and digits) were checked again.
    assert checked == APP_HEADERS


def test_a_view_s_own_value_for_one_of_the_app_s_headers_is_checked(checked):
    own = ("Content-Security-Policy", CONTENT_SECURITY_POLICY + "; upgrade-insecure-requests")
    r = response()
    r.start_response("200 OK", [own])
    assert checked == [own] and r.headers == [own]


def test_an_id_that_is_not_only_letters_and_digits_is_checked(checked):
    sent = ("X-Request-ID", "edge-1.trace:42")  # a client's own, as REQUEST_ID allows
    r = response()
    r.start_response("200 OK", [sent])
    assert checked == [sent] and r.headers == [sent]


def test_under_a_gunicorn_that_would_change_such_an_id_every_id_is_checked(monkeypatch):
    process_headers = Response.process_headers

    def upper_ids(self, headers):
        changed = [(n, v.upper() if n == "X-Request-ID" else v) for n, v in headers]
        process_headers(self, changed)

    monkeypatch.setattr(Response, "process_headers", upper_ids)
    patch_response_headers()
    r = response()
    r.start_response("200 OK", [("X-Request-ID", "0123456789abcdef")])
    assert r.headers == [("X-Request-ID", "0123456789ABCDEF")]  # as that gunicorn makes it


@pytest.mark.parametrize(
    ("header", "refusal"),
    [
        (("X-Bad", "a\x00b"), InvalidResponseHeader),
        (("X-Request-ID", "a\x00b"), InvalidResponseHeader),
        (("Bad Name", "x"), InvalidResponseHeaderName),
    ],
)
def test_a_bad_header_is_refused_as_gunicorn_refuses_it(checked, header, refusal):
    with pytest.raises(refusal):
        response().start_response("200 OK", [*CONSTANT_HEADERS, header])


def test_the_app_s_connection_close_closes_the_connection(checked):
    r = response()
    r.start_response("413 Request Entity Too Large", [*RESPONSE, ("Connection", "close")])
    assert r.must_close
    assert ("Connection", "close") not in r.headers  # gunicorn writes its own


def test_without_connection_close_the_connection_stays_open(checked):
    r = response()
    r.start_response("200 OK", list(RESPONSE))
    assert not r.must_close
