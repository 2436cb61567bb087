"""The HTTP/1.1 request grammar (RFC 9112) that our checks hold every server to.

gunicorn's parser is strict; waitress's, Werkzeug's and granian's accept more.
Where a server is lenient, a check of ours runs in front of it: the waitress
parser (``launchers.waitress_parser``) and the dev server's request handler
(``launchers.dev_handler``) pass the raw request head and the chunked framing
through these functions. The rules are gunicorn's where gunicorn has one, so
the same request gets the same answer whichever server runs:

- request line: ``METHOD SP request-target SP HTTP/1.0|HTTP/1.1``, at most
  REQUEST_LINE_BYTES (414 above); the method an upper-case token of 3 to 20
  characters; the target printable ASCII, in one of the four forms of
  RFC 9112 section 3.2 and only with the method that form belongs to;
- field lines: ``token ":" value``, no space before the colon, no obs-fold,
  no control byte but HTAB in the value, a line (with its CRLF) at most
  HEADER_LINE_BYTES and at most HEADER_FIELDS of them (431 above);
- framing: Transfer-Encoding only as one ``chunked``, never with
  Content-Length nor in HTTP/1.0; one Content-Length of digits; one Host and
  one Content-Type; no Expect but ``100-continue`` (417);
- chunked bodies: a hex size, extensions as RFC 9112 section 7.1.1 writes
  them, and a trailer section of field lines without the fields that frame,
  route or authenticate a request (RFC 9110 section 6.5.1).

Pure functions over bytes: no server is imported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.limits import HEADER_FIELDS, HEADER_LINE_BYTES, REQUEST_LINE_BYTES

CRLF = b"\r\n"
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(TOKEN)
# gunicorn's convention for methods: every registered one is upper case, 3 to 20 long.
METHOD = re.compile(rb"[A-Z0-9!$%&'*+\-.^_`|~]{3,20}")
_VERSIONS = (b"HTTP/1.0", b"HTTP/1.1")
# RFC 3986 section 2: a URI is printable ASCII; anything else must be percent-encoded.
_TARGET = re.compile(rb"[\x21-\x7e]+")
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+):[0-9]+")
# RFC 9110 section 5.5: a field value is visible bytes, obs-text, SP and HTAB.
_VALUE_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
# RFC 9112 section 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_EXT = re.compile(
    rb"(?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
# Fields that frame, route or authenticate a request: a trailer must not carry them
# (RFC 9110 section 6.5.1), as a recipient that merged them would be misled. The same
# six as gunicorn's, so that both refuse the same trailers.
FORBIDDEN_TRAILERS = frozenset(
    {b"content-length", b"transfer-encoding", b"trailer", b"te", b"host", b"authorization"}
)
# Fields of one value only (RFC 9110 section 5.3): a second one makes the request ambiguous.
SINGLETON_FIELDS = (b"host", b"content-type")


@dataclass(frozen=True)
class Refusal:
    status: int  # 400, 414, 417 or 431
    reason: str  # for the error body and the log


def bad(reason: str) -> Refusal:
    return Refusal(400, reason)


def request_line_refusal(line: bytes) -> Refusal | None:
    """Why this request line (without its CRLF) must be refused, or None."""
    if len(line) > REQUEST_LINE_BYTES:
        return Refusal(414, f"request line over {REQUEST_LINE_BYTES} bytes")
    parts = line.split(b" ")
    if len(parts) != 3:
        return bad("malformed request line")
    method, target, version = parts
    if not METHOD.fullmatch(method):
        return bad("malformed method")
    if version not in _VERSIONS:
        return bad("unsupported HTTP version")
    return target_refusal(method, target)


def target_refusal(method: bytes, target: bytes) -> Refusal | None:
    """The request target must be printable and of the form its method allows."""
    if not _TARGET.fullmatch(target):
        return bad("malformed request target")
    if target == b"*":  # asterisk-form: OPTIONS only
        return None if method == b"OPTIONS" else bad("'*' is a target of OPTIONS only")
    if method == b"CONNECT":  # authority-form: CONNECT only, and nothing else with it
        return None if _AUTHORITY.fullmatch(target) else bad("malformed CONNECT target")
    if target.startswith(b"/"):  # origin-form
        return None
    if _SCHEME.match(target):  # absolute-form
        try:
            urlsplit(target).port  # noqa: B018 - it raises for a malformed authority
        except ValueError:
            return bad("malformed absolute target")
        return None
    return bad("malformed request target")


def field_line_refusal(line: bytes) -> Refusal | None:
    """Why one header or trailer line (without its CRLF) must be refused, or None."""
    if len(line) + len(CRLF) > HEADER_LINE_BYTES:  # counted with its CRLF, as gunicorn does
        return Refusal(431, f"a header field over {HEADER_LINE_BYTES} bytes")
    if line[:1] in (b" ", b"\t"):
        return bad("obsolete line folding")
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        return bad("malformed header field")
    if _VALUE_CONTROL.search(value):
        return bad("control character in a header value")
    return None


def fields(lines: list[bytes]) -> dict[bytes, list[bytes]]:
    """Lower-case name -> every value sent under it, stripped of OWS."""
    seen: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        seen.setdefault(name.lower(), []).append(value.strip(b" \t"))
    return seen


def head_refusal(head: bytes) -> Refusal | None:
    """Why a request head must be refused, or None.

    ``head`` is the request line and the field lines, each ending with CRLF
    (the blank line that ends the head may follow).
    """
    if b"\n" in head.replace(CRLF, b""):
        return bad("a line ends with a bare LF")
    if b"\r" in head.replace(CRLF, b""):
        return bad("bare CR")
    first, *lines = head.split(CRLF)
    refused = request_line_refusal(first)
    if refused:
        return refused
    while lines and not lines[-1]:
        lines.pop()
    refused = field_lines_refusal(lines, "header")
    if refused:
        return refused
    return framing_refusal(first.endswith(b"HTTP/1.0"), fields(lines))


def framing_refusal(http_1_0: bool, seen: dict[bytes, list[bytes]]) -> Refusal | None:
    """One way to tell where the body ends, one Host, and an Expect we can meet."""
    encodings = seen.get(b"transfer-encoding", [])
    lengths = seen.get(b"content-length", [])
    if encodings:
        if len(encodings) > 1 or encodings[0].lower() != b"chunked":
            return bad("Transfer-Encoding other than one 'chunked'")
        if lengths:
            return bad("Transfer-Encoding with Content-Length")
        if http_1_0:
            return bad("Transfer-Encoding in HTTP/1.0")
    if len(lengths) > 1:
        return bad("more than one Content-Length")
    if lengths and not _DIGITS.fullmatch(lengths[0]):
        return bad("malformed Content-Length")
    for name in SINGLETON_FIELDS:
        if len(seen.get(name, [])) > 1:
            return bad(f"more than one {name.decode().title()}")
    expect = seen.get(b"expect", [])
    if expect and [value.lower() for value in expect] != [b"100-continue"]:
        return Refusal(417, "unsupported expectation")
    return None


def chunk_size(line: bytes) -> int | None:
    """The size a chunk-size line (without its CRLF) announces, or None when malformed."""
    size, semicolon, extensions = line.partition(b";")
    if semicolon:
        size = size.rstrip(b" \t")  # BWS is allowed before an extension only
        if not _CHUNK_EXT.fullmatch(semicolon + extensions):
            return None
    if not _HEX.fullmatch(size):
        return None
    return int(size, 16)


def trailer_refusal(section: bytes) -> Refusal | None:
    """Why a trailer section (its field lines, each ending with CRLF) must be refused."""
    body = section.replace(CRLF, b"")
    if b"\n" in body or b"\r" in body:
        return bad("a trailer line ends with a bare LF or CR")
    lines = [line for line in section.split(CRLF) if line]
    refused = field_lines_refusal(lines, "trailer")
    if refused:
        return refused
    for line in lines:
        if line.partition(b":")[0].lower() in FORBIDDEN_TRAILERS:
            return bad("a trailer field that frames, routes or authenticates a request")
    return None


def field_lines_refusal(lines: list[bytes], kind: str) -> Refusal | None:
    """Why a head's or a trailer section's field lines must be refused: too many, or one
    that is malformed."""
    if len(lines) > HEADER_FIELDS:
        return Refusal(431, f"more than {HEADER_FIELDS} {kind} fields")
    for line in lines:
        refused = field_line_refusal(line)
        if refused:
            return refused
    return None
