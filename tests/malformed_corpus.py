"""Malformed and ambiguous requests: smuggling vectors, framing errors, limit breakers.

Each vector is one raw request. Where a lenient parser could split it into two
requests, the second one asks for /smuggled: the app must never see that path.
"""

from __future__ import annotations

HOST = b"Host: 127.0.0.1\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n"
# Sent after every vector, on the same connection.
FOLLOW_UP = b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"

CHUNKED_THEN_SMUGGLED = b"0\r\n\r\n" + SMUGGLED


def post(headers: bytes, body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /api/echo " + version + b"\r\n" + HOST + headers + b"\r\n" + body


def get(path: bytes = b"/vector", headers: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET " + path + b" " + version + b"\r\n" + HOST + headers + b"\r\n"


def chunked(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked\r\n", body)


_cl_all = str(len(CHUNKED_THEN_SMUGGLED)).encode()

VECTORS: dict[str, bytes] = {
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
    "te_identity": post(b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n", b"{}"),
    "te_chunked_then_identity": post(
        b"Transfer-Encoding: chunked, identity\r\n", CHUNKED_THEN_SMUGGLED
    ),
    "te_leading_comma": post(b"Transfer-Encoding: ,chunked\r\n", CHUNKED_THEN_SMUGGLED),
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
    "te_in_http_1_0": post(
        b"Transfer-Encoding: chunked\r\n", CHUNKED_THEN_SMUGGLED, version=b"HTTP/1.0"
    ),
    # Chunk sizes a strict parser refuses.
    "chunk_size_0x": chunked(b"0x3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_underscore": chunked(b"0_3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_plus": chunked(b"+3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_negative": chunked(b"-3\r\nabc\r\n0\r\n\r\n"),
    "chunk_size_leading_space": chunked(b" 3\r\nabc\r\n0\r\n\r\n"),
    "chunk_bare_lf": chunked(b"3\nabc\n0\n\n" + SMUGGLED),
    "chunk_data_too_long": chunked(b"3\r\nabcdef\r\n0\r\n\r\n"),
    "chunk_size_not_hex": chunked(b"zz\r\nabc\r\n0\r\n\r\n"),
    # Content-Length a strict parser refuses.
    "cl_plus_sign": post(b"Content-Length: +2\r\n", b"{}"),
    "cl_negative": post(b"Content-Length: -2\r\n", b"{}"),
    "cl_list": post(b"Content-Length: 2, 2\r\n", b"{}"),
    "cl_duplicate_same": post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"),
    "cl_duplicate_different": post(b"Content-Length: 2\r\nContent-Length: 40\r\n", b"{}"),
    "cl_not_a_number": post(b"Content-Length: two\r\n", b"{}"),
    "cl_huge_number": post(b"Content-Length: 99999999999999999999999999\r\n", b"{}"),
    "space_before_colon": post(b"Content-Length : 2\r\n", b"{}"),
    # Line breaks and bytes that do not belong in a request head.
    "obs_fold": get(headers=b"X-Folded: a\r\n b\r\n"),
    "bare_lf": b"GET /vector HTTP/1.1\nHost: 127.0.0.1\n\n",
    "bare_cr_in_value": get(headers=b"X-Bad: a\rb\r\n"),
    "nul_in_value": get(headers=b"X-Bad: a\x00b\r\n"),
    "nul_in_path": get(path=b"/vec\x00tor"),
    "space_in_header_name": get(headers=b"X Bad: a\r\n"),
    "empty_header_name": get(headers=b": a\r\n"),
    "duplicate_host": get(headers=HOST),
    "bad_version": get(version=b"HTTP/2.0"),
    "no_version": b"GET /vector\r\n" + HOST + b"\r\n",
    "bad_method": b"G(T /vector HTTP/1.1\r\n" + HOST + b"\r\n",
    "tls_on_plain_port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    + b"\x00" * 40
    + b"\r\n\r\n",
    # Limits: 8 KiB request line, 100 header fields, 8 KiB per header.
    "request_line_too_long": get(path=b"/" + b"a" * 9000),
    "too_many_headers": get(headers=b"".join(b"X-H%d: v\r\n" % i for i in range(101))),
    "header_too_large": get(headers=b"X-Big: " + b"v" * 9000 + b"\r\n"),
}
