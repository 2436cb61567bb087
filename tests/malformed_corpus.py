"""Hostile, malformed and ambiguous requests, written after RFC 9112, sent raw.

Each vector is one request (or a request and what a lenient parser would take
for a second one). It is sent on its own connection and followed there by
FOLLOW_UP, a pipelined ``GET /healthz``. Where a lenient parser could split a
vector into two requests, the hidden one asks for ``/smuggled``: the app must
never see that path. Every vector must get a 4xx with a body, a 2xx, or a clean
close; never a 5xx, an ERROR log line, a connection left open with the pipelined
request unanswered (a swallowed request), or a smuggled one (tests/live.py).

SERVED names the vectors that are valid HTTP/1.1, unusual but well formed: they
get an answer from the app. HALF_CLOSED names those whose client ends its side
of the connection after sending (a body cut short), as a client that gave up
would. Everything else is malformed and should be refused; where a server
answers differently, tests/test_contract.py says so and docs/production.md
says why.
"""

from __future__ import annotations

HOST = b"Host: 127.0.0.1\r\n"
OK = b"/api/info"  # what a vector that should be served asks for (200, and seen by the app)
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n"
# Sent after every vector, on the same connection.
FOLLOW_UP = b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"

CHUNKED_THEN_SMUGGLED = b"0\r\n\r\n" + SMUGGLED


def post(headers: bytes, body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /api/echo " + version + b"\r\n" + HOST + headers + b"\r\n" + body


def get(path: bytes = b"/vector", headers: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET " + path + b" " + version + b"\r\n" + HOST + headers + b"\r\n"


def line(request_line: bytes, headers: bytes = b"") -> bytes:
    return request_line + b"\r\n" + HOST + headers + b"\r\n"


def chunked(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n", body)


def trailers(section: bytes) -> bytes:
    """A chunked JSON body ``{}`` whose last chunk carries this trailer section."""
    return chunked(b"2\r\n{}\r\n0\r\n" + section + b"\r\n")


_cl_all = str(len(CHUNKED_THEN_SMUGGLED)).encode()

# --- framing: Transfer-Encoding and Content-Length (RFC 9112 section 6) --------------
FRAMING: dict[str, bytes] = {
    # Two framings at once: whichever one the server picks, a proxy may pick the other.
    "te_and_cl": post(
        b"Content-Length: " + _cl_all + b"\r\nTransfer-Encoding: chunked\r\n", CHUNKED_THEN_SMUGGLED
    ),
    "cl_and_te": post(
        b"Transfer-Encoding: chunked\r\nContent-Length: " + _cl_all + b"\r\n", CHUNKED_THEN_SMUGGLED
    ),
    "te_duplicate": post(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_THEN_SMUGGLED
    ),
    "te_chunked_twice_in_a_list": post(
        b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_THEN_SMUGGLED
    ),
    "te_identity": post(b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n", b"{}"),
    "te_chunked_then_identity": post(
        b"Transfer-Encoding: chunked, identity\r\n", CHUNKED_THEN_SMUGGLED
    ),
    "te_leading_comma": post(b"Transfer-Encoding: ,chunked\r\n", CHUNKED_THEN_SMUGGLED),
    "te_trailing_comma": post(b"Transfer-Encoding: chunked,\r\n", CHUNKED_THEN_SMUGGLED),
    "te_gzip_then_chunked": post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_THEN_SMUGGLED),
    "te_vertical_tab": post(
        b"Transfer-Encoding:\x0bchunked\r\nContent-Length: " + _cl_all + b"\r\n",
        CHUNKED_THEN_SMUGGLED,
    ),
    "te_unknown": post(b"Transfer-Encoding: xchunked\r\n", CHUNKED_THEN_SMUGGLED),
    "te_obs_fold": post(
        b"Transfer-Encoding:\r\n chunked\r\nContent-Length: " + _cl_all + b"\r\n",
        CHUNKED_THEN_SMUGGLED,
    ),
    "te_underscore_name": post(
        b"Transfer_Encoding: chunked\r\nContent-Length: " + _cl_all + b"\r\n",
        CHUNKED_THEN_SMUGGLED,
    ),
    "te_hidden_behind_a_bare_lf": post(
        b"X-Note: a\nTransfer-Encoding: chunked\r\nContent-Length: " + _cl_all + b"\r\n",
        CHUNKED_THEN_SMUGGLED,
    ),
    "te_in_http_1_0": post(
        b"Transfer-Encoding: chunked\r\n", CHUNKED_THEN_SMUGGLED, version=b"HTTP/1.0"
    ),
    "te_upper_case": post(b"Transfer-Encoding: CHUNKED\r\n", b"2\r\n{}\r\n0\r\n\r\n"),
    "cl_plus_sign": post(b"Content-Length: +2\r\n", b"{}"),
    "cl_negative": post(b"Content-Length: -2\r\n", b"{}"),
    "cl_list": post(b"Content-Length: 2, 2\r\n", b"{}"),
    "cl_duplicate_same": post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"),
    "cl_duplicate_different": post(b"Content-Length: 2\r\nContent-Length: 40\r\n", b"{}"),
    "cl_not_a_number": post(b"Content-Length: two\r\n", b"{}"),
    "cl_huge_number": post(b"Content-Length: 99999999999999999999999999\r\n", b"{}"),
    "cl_leading_zeros": post(b"Content-Length: 002\r\n", b"{}"),
    "space_before_colon": post(b"Content-Length : 2\r\n", b"{}"),
}

# --- chunked bodies: sizes, extensions, data, trailers (RFC 9112 section 7.1) ---------
CHUNKS: dict[str, bytes] = {
    "chunk_size_0x": chunked(b"0x3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_underscore": chunked(b"0_3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_plus": chunked(b"+3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_negative": chunked(b"-3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_leading_space": chunked(b" 3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_not_hex": chunked(b"zz\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_upper_case_hex": chunked(b'A\r\n{"a": 123}\r\n0\r\n\r\n'),
    "chunk_bare_lf": chunked(b"3\nabc\n0\n\n" + SMUGGLED),
    "chunk_data_too_long": chunked(b"3\r\nabcdef\r\n0\r\n\r\n"),
    "chunk_extension": chunked(b"2;name=value\r\n{}\r\n0\r\n\r\n"),
    "chunk_extension_quoted": chunked(b'2;name="a value"\r\n{}\r\n0\r\n\r\n'),
    "chunk_extension_after_space": chunked(b"2 ;name=value\r\n{}\r\n0\r\n\r\n"),
    "chunk_extension_without_name": chunked(b"2;=value\r\n{}\r\n0\r\n\r\n"),
    "chunk_extension_bare_cr": chunked(b"2;name=a\rb\r\n{}\r\n0\r\n\r\n"),
    "last_chunk_with_a_space": chunked(b"2\r\n{}\r\n0 \r\n\r\n"),
    # The last chunk without the CRLF that ends the message: a lenient parser reads
    # the pipelined request as the trailer section, and never answers it.
    "last_chunk_without_final_crlf": chunked(b"2\r\n{}\r\n0\r\n"),
    "trailer_field": trailers(b"X-Checksum: abc\r\n"),
    "trailer_content_length": trailers(b"Content-Length: 40\r\n"),
    "trailer_transfer_encoding": trailers(b"Transfer-Encoding: chunked\r\n"),
    "trailer_host": trailers(b"Host: example.com\r\n"),
    "trailer_not_a_field": trailers(SMUGGLED[:-2]),
    "trailer_bare_lf": trailers(b"X-Checksum: abc\nX-Other: 1\r\n"),
    "trailer_obs_fold": trailers(b"X-Checksum: abc\r\n def\r\n"),
    # Bodies that end before their declared size (the client then closes its side),
    # one of them with a size no fixed-width integer holds.
    "chunk_size_overflow": chunked(b"1" + b"0" * 40 + b"\r\nabc\r\n0\r\n\r\n"),
    "chunk_cut_short": chunked(b"fffff\r\n{}"),
    "chunk_cut_short_small": chunked(b"10\r\n{}"),
    "content_length_cut_short": post(b"Content-Length: 100\r\n", b"{}"),
}

# --- header fields (RFC 9112 section 5, RFC 9110 section 5) ---------------------------
HEADERS: dict[str, bytes] = {
    "obs_fold": get(headers=b"X-Folded: a\r\n b\r\n"),
    "bare_lf": b"GET /vector HTTP/1.1\nHost: 127.0.0.1\n\n",
    "bare_lf_inside_a_header": get(headers=b"X-Request-ID: abc\nX-Evil: 1\r\n"),
    "bare_cr_in_value": get(headers=b"X-Bad: a\rb\r\n"),
    "nul_in_value": get(headers=b"X-Bad: a\x00b\r\n"),
    "del_in_value": get(headers=b"X-Bad: a\x7fb\r\n"),
    "nul_in_name": get(headers=b"X-B\x00ad: a\r\n"),
    "space_in_header_name": get(headers=b"X Bad: a\r\n"),
    "tab_before_colon": get(headers=b"X-Bad\t: a\r\n"),
    "empty_header_name": get(headers=b": a\r\n"),
    "no_colon": get(headers=b"X-Bad\r\n"),
    "obs_text_in_value": get(path=OK, headers=b"X-Latin: caf\xe9\r\n"),
    "duplicate_host": get(headers=HOST),
    "duplicate_host_different": get(headers=b"Host: example.com\r\n"),
    "host_with_a_comma": b"GET /vector HTTP/1.1\r\nHost: a,b\r\n\r\n",
    "duplicate_content_type": post(
        b"Content-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n",
        b"{}",
    ),
}

# --- request lines and targets (RFC 9112 sections 2.2, 3) ------------------------------
REQUEST_LINES: dict[str, bytes] = {
    "bad_version": get(version=b"HTTP/2.0"),
    "http_1_2": get(path=OK, version=b"HTTP/1.2"),
    "lower_case_version": get(version=b"http/1.1"),
    "no_version": b"GET /vector\r\n" + HOST + b"\r\n",
    "no_target": line(b"GET HTTP/1.1"),
    "two_spaces": line(b"GET  /vector HTTP/1.1"),
    "tab_separator": line(b"GET\t/vector HTTP/1.1"),
    "whitespace_before_the_method": line(b" GET /vector HTTP/1.1"),
    "empty_line_before_the_request": b"\r\n" + get(path=OK),
    "bad_method": b"G(T /vector HTTP/1.1\r\n" + HOST + b"\r\n",
    "lower_case_method": line(b"get /api/info HTTP/1.1"),
    "nul_in_path": get(path=b"/vec\x00tor"),
    "utf8_in_path": get(path=b"/caf\xc3\xa9"),
    "asterisk_with_get": line(b"GET * HTTP/1.1"),
    "asterisk_with_options": line(b"OPTIONS * HTTP/1.1"),
    "authority_form_with_get": line(b"GET example.com:443 HTTP/1.1"),
    "relative_target": line(b"GET foo/bar HTTP/1.1"),
    "absolute_form": line(b"GET http://127.0.0.1/api/info HTTP/1.1"),
    "absolute_form_ipv6": line(b"GET http://[::1]/api/info HTTP/1.1"),
    "absolute_form_unclosed_bracket": line(b"GET http://[::1 HTTP/1.1"),
    "absolute_form_stray_bracket": line(b"PUT s://]ufd/: HTTP/1.1"),
    # A good request, then on the same connection a target urllib cannot split:
    # the answer to the first must not be lost with the second.
    "bracket_after_a_good_request": get(path=OK) + line(b"GET http://[::1 HTTP/1.1"),
    "tls_on_plain_port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    + b"\x00" * 40
    + b"\r\n\r\n",
}

# --- Expect (RFC 9110 section 10.1.1) --------------------------------------------------
EXPECT: dict[str, bytes] = {
    "expect_continue_without_body": get(path=OK, headers=b"Expect: 100-continue\r\n"),
    "expect_continue_empty_body": get(
        path=OK, headers=b"Expect: 100-continue\r\nContent-Length: 0\r\n"
    ),
    "expect_continue_with_body": post(
        b"Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n", b"{}"
    ),
    "expect_continue_http_1_0": get(
        path=OK, headers=b"Expect: 100-continue\r\n", version=b"HTTP/1.0"
    ),
    "expect_unknown": get(path=OK, headers=b"Expect: something-else\r\n"),
}

# --- the head's limits: 8190-byte request line, 100 fields, 8190-byte field line -------
LIMITS: dict[str, bytes] = {
    "request_line_too_long": get(path=b"/" + b"a" * 9000),
    "too_many_headers": get(headers=b"".join(b"X-H%d: v\r\n" % i for i in range(101))),
    "header_too_large": get(headers=b"X-Big: " + b"v" * 9000 + b"\r\n"),
}

VECTORS: dict[str, bytes] = {**FRAMING, **CHUNKS, **HEADERS, **REQUEST_LINES, **EXPECT, **LIMITS}

# Valid, if unusual, HTTP/1.1: the app answers them (a 2xx, or its own 404 for OPTIONS *).
SERVED = frozenset(
    {
        "te_upper_case",
        "cl_leading_zeros",
        "chunk_size_upper_case_hex",
        "chunk_extension",
        "chunk_extension_quoted",
        "chunk_extension_after_space",
        "trailer_field",
        "obs_text_in_value",
        "empty_line_before_the_request",
        "asterisk_with_options",
        "absolute_form",
        "absolute_form_ipv6",
        "expect_continue_without_body",
        "expect_continue_empty_body",
        "expect_continue_with_body",
        "expect_continue_http_1_0",
        "bracket_after_a_good_request",  # the good one is served; the bad one is refused
    }
)
HALF_CLOSED = frozenset(
    {"chunk_cut_short", "chunk_cut_short_small", "content_length_cut_short", "chunk_size_overflow"}
)

# Faults in a body or its trailer section: a server that frames bodies lazily finds them
# only when the app reads the body (tests/test_contract.py names who does).
BODY_FAULTS = frozenset(
    {
        "chunk_size_0x",
        "chunk_size_underscore",
        "chunk_size_plus",
        "chunk_size_negative",
        "chunk_size_leading_space",
        "chunk_size_not_hex",
        "chunk_size_overflow",
        "chunk_bare_lf",
        "chunk_data_too_long",
        "chunk_extension_bare_cr",
        "chunk_extension_without_name",
        "last_chunk_with_a_space",
        "last_chunk_without_final_crlf",
        "chunk_cut_short",
        "chunk_cut_short_small",
        "content_length_cut_short",
    }
)
TRAILER_FAULTS = frozenset(
    name for name in CHUNKS if name.startswith("trailer_") and name not in SERVED
)
