"""launchers/http_rules.py: the request grammar our checks in front of waitress and the
dev server apply, in process (the live servers are tests/test_contract.py's)."""

from __future__ import annotations

import pytest

from app.limits import HEADER_FIELDS, HEADER_LINE_BYTES, REQUEST_LINE_BYTES
from launchers.http_rules import (
    chunk_size,
    field_line_refusal,
    head_refusal,
    request_line_refusal,
    trailer_refusal,
)

HOST = b"Host: x\r\n"


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/1.1",
        b"GET /a?b=c HTTP/1.0",
        b"OPTIONS * HTTP/1.1",
        b"GET http://example.com/a HTTP/1.1",
        b"GET http://[::1]:8000/ HTTP/1.1",
        b"CONNECT example.com:443 HTTP/1.1",
        b"M-SEARCH /x HTTP/1.1",
    ],
)
def test_well_formed_request_lines_pass(line):
    assert request_line_refusal(line) is None


@pytest.mark.parametrize(
    "line",
    [
        b"GET HTTP/1.1",
        b"GET * HTTP/1.1",
        b"GET example.com:443 HTTP/1.1",
        b"GET foo/bar HTTP/1.1",
        b"GET http://[::1 HTTP/1.1",
        b"PUT s://]ufd/: HTTP/1.1",
        b"CONNECT /x HTTP/1.1",
        b"GET / HTTP/2.0",
        b"GET / HTTP/1.2",
        b"GET / http/1.1",
        b"GET /",
        b"GET  / HTTP/1.1",
        b"get / HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"GET /caf\xc3\xa9 HTTP/1.1",
        b"GET /a\x00b HTTP/1.1",
    ],
)
def test_malformed_request_lines_are_400(line):
    refused = request_line_refusal(line)
    assert refused is not None and refused.status == 400


def test_the_request_line_limit_counts_the_line_without_its_crlf():
    def line(size: int) -> bytes:
        return b"GET /" + b"a" * (size - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"

    assert request_line_refusal(line(REQUEST_LINE_BYTES)) is None
    assert request_line_refusal(line(REQUEST_LINE_BYTES + 1)).status == 414


def test_a_header_line_is_counted_with_its_crlf():
    fits = b"X: " + b"v" * (HEADER_LINE_BYTES - 2 - 3)
    assert field_line_refusal(fits) is None
    assert field_line_refusal(fits + b"v").status == 431


@pytest.mark.parametrize(
    "field", [b" folded", b"X Bad: a", b"X-Bad : a", b": a", b"X-Bad", b"X: a\x00b", b"X: a\rb"]
)
def test_malformed_field_lines_are_400(field):
    assert field_line_refusal(field).status == 400


def test_obs_text_and_tabs_in_a_value_pass():
    assert field_line_refusal(b"X-Latin: caf\xe9\tau lait") is None


def head(*fields: bytes, line: bytes = b"POST / HTTP/1.1") -> bytes:
    return line + b"\r\n" + HOST + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


@pytest.mark.parametrize(
    "fields",
    [
        (b"Transfer-Encoding: chunked", b"Content-Length: 3"),
        (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
        (b"Transfer-Encoding: chunked, chunked",),
        (b"Transfer-Encoding: gzip, chunked",),
        (b"Transfer-Encoding: ,chunked",),
        (b"Content-Length: 2", b"Content-Length: 2"),
        (b"Content-Length: 2, 2",),
        (b"Content-Length: +2",),
        (b"Host: y",),
        (b"Content-Type: a", b"Content-Type: b"),
    ],
)
def test_ambiguous_framing_and_repeated_singletons_are_400(fields):
    assert head_refusal(head(*fields)).status == 400


def test_chunked_in_http_1_0_is_400_and_an_unknown_expectation_417():
    assert head_refusal(head(b"Transfer-Encoding: chunked", line=b"POST / HTTP/1.0")).status == 400
    assert head_refusal(head(b"Expect: 100-continue")) is None
    assert head_refusal(head(b"Expect: fancy")).status == 417


def test_bare_lf_and_bare_cr_in_a_head_are_400():
    assert head_refusal(b"GET / HTTP/1.1\nHost: x\n\n").status == 400
    assert head_refusal(b"GET / HTTP/1.1\r\nX-A: b\nX-B: c\r\n" + HOST + b"\r\n").status == 400
    assert head_refusal(b"GET / HTTP/1.1\r\nX-A: b\rc\r\n" + HOST + b"\r\n").status == 400


def test_the_field_count_limit():
    many = [b"X-%d: v" % i for i in range(HEADER_FIELDS - 1)]  # with Host: the limit
    assert head_refusal(head(*many)) is None
    assert head_refusal(head(*many, b"X-Last: v")).status == 431


@pytest.mark.parametrize(
    "line, size",
    [(b"0", 0), (b"1a", 26), (b"A", 10), (b"3;name=value", 3), (b'3 ; n = "a b"', 3), (b"3;n", 3)],
)
def test_chunk_sizes(line, size):
    assert chunk_size(line) == size


@pytest.mark.parametrize("line", [b"0x3", b"+3", b"-3", b"0_3", b" 3", b"3 ", b"", b"3;=x", b"zz"])
def test_malformed_chunk_sizes(line):
    assert chunk_size(line) is None


def test_trailers():
    assert trailer_refusal(b"X-Checksum: abc\r\n") is None
    for name in (b"Content-Length", b"Transfer-Encoding", b"Host", b"Trailer", b"TE"):
        assert trailer_refusal(name + b": 1\r\n").status == 400
    assert trailer_refusal(b"GET /next HTTP/1.1\r\n").status == 400  # a request, not a field
    assert trailer_refusal(b"X-A: 1\nX-B: 2\r\n").status == 400
