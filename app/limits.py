"""The request limits: the head's, refused by the app as gunicorn refuses them, under
every server that does not refuse them itself (app/middleware.py), and the body's:
MAX_CONTENT_LENGTH for streamed (chunked) bodies too.

The head: a request line over REQUEST_LINE_BYTES is a 414; more than HEADER_FIELDS
header fields, or one header line over HEADER_LINE_BYTES, a 431. The boundaries
are gunicorn's (27, ``limit_request_line`` and ``limit_request_field_size`` 8190),
measured on a real server: a request line is counted without its CRLF (8190 bytes
pass, 8191 are refused); a header line with it (``name: value`` of 8188 bytes plus
CRLF passes, 8189 plus CRLF is refused). The app sees the head as the server parsed
it, so it measures what it can rebuild: the target as sent where the server gives it
(RAW_URI, REQUEST_URI), else the path quoted again; each header as ``Name: value``
with one space; a header sent twice is one field, as the server joined it.

The body: over MAX_CONTENT_LENGTH is a 413, never a cut body. With Content-Length,
werkzeug refuses a body over the limit before reading it. Without one
(Transfer-Encoding: chunked), werkzeug's ``LimitedStream`` stops reading *at* the
limit without raising, so ``request.get_json()`` would parse the first
MAX_CONTENT_LENGTH bytes of a longer body: a misleading 400, or a silently
truncated body. Reading one byte past the limit tells a body at the limit from one
over it.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
)
from werkzeug.wsgi import get_content_length

REQUEST_LINE_BYTES = 8190
HEADER_FIELDS = 100
HEADER_LINE_BYTES = 8190

_VERSION = len(" HTTP/1.1")
_is_str = str.__instancecheck__
# Headers the WSGI environ names without the HTTP_ prefix.
_UNPREFIXED = ("CONTENT_TYPE", "CONTENT_LENGTH")
# What the app reads of a body its view left unread, to find its end (see RequestBody.drain).
DRAIN_BYTES = 64 * 1024


def head_refusal(environ: dict[str, t.Any]) -> HTTPException | None:
    """The 414 or 431 this request's head earns, or None."""
    method = environ.get("REQUEST_METHOD", "")
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target is not None:
        line = len(method) + 1 + len(target) + _VERSION
    else:
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        # Quoting at most triples the path: only quote when it could matter.
        line = len(method) + 1 + 3 * len(path) + 1 + len(query) + _VERSION
        if line > REQUEST_LINE_BYTES:
            raw = path.encode("latin-1", "replace")  # PATH_INFO holds the bytes as latin-1
            target = quote(raw, safe="/;:@&=+$,!~*'()%") + ("?" + query if query else "")
            line = len(method) + 1 + len(target) + _VERSION
    if line > REQUEST_LINE_BYTES:
        return RequestURITooLarge(f"The request line is over {REQUEST_LINE_BYTES} bytes.")
    # No header line can be too long while all the environ's text together is shorter,
    # nor too many fields in a small environ: most requests skip the walk over the headers.
    text = len("".join(environ)) + len("".join(filter(_is_str, environ.values())))
    if len(environ) > HEADER_FIELDS or text > HEADER_LINE_BYTES - 4:
        return _header_refusal(environ)
    return None


def _header_refusal(environ: dict[str, t.Any]) -> HTTPException | None:
    fields = 0
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            name = len(key) - 5
        elif key in _UNPREFIXED:
            name = len(key)
        else:
            continue
        fields += 1
        if name + 2 + len(value) + 2 > HEADER_LINE_BYTES:
            return RequestHeaderFieldsTooLarge(f"A header line is over {HEADER_LINE_BYTES} bytes.")
    if fields > HEADER_FIELDS:
        return RequestHeaderFieldsTooLarge(f"There are more than {HEADER_FIELDS} header fields.")
    return None


def has_body(environ: dict[str, t.Any]) -> bool:
    """Whether the request comes with a body: a length above 0, or chunks."""
    length = environ.get("CONTENT_LENGTH")
    return bool(length and length != "0") or "HTTP_TRANSFER_ENCODING" in environ


class RequestBody:
    """wsgi.input as the app reads it.

    A read the server's parser fails (a malformed chunk size, a dropped
    connection) is a 400 for the client, not a 500. A streamed body over the
    request's ``max_content_length`` is a 413. And it knows whether the body was
    read to its end: when not, the server cannot tell where the next request on
    the connection starts, so the response closes it (app/middleware.py).
    """

    def __init__(self, stream: t.Any, environ: dict[str, t.Any]) -> None:
        self._stream = stream
        self._environ = environ
        # None for a streamed (chunked) body, as werkzeug reads the head.
        self._remaining = get_content_length(environ)
        self._streamed = self._remaining is None
        self._read = 0
        self.ended = False
        self.failed = False

    def _limit(self) -> int | None:
        # The request's own limit: MAX_CONTENT_LENGTH, or what a view set for it.
        request = self._environ.get("werkzeug.request")
        return request.max_content_length if request is not None else None

    def _account(self, data: bytes, asked: int | None) -> bytes:
        self._read += len(data)
        if self._remaining is not None:
            self._remaining -= len(data)
            self.ended = self._remaining <= 0
        elif not data and asked != 0:
            self.ended = True
        if self._streamed and data:
            limit = self._limit()
            if limit is not None and self._read >= limit:
                # At the limit: one byte more means over it.
                if self._read > limit or self._call(self._stream.read, 1):
                    self.failed = True
                    raise RequestEntityTooLarge()
                self.ended = True
        return data

    def _call(self, method: t.Callable, *args: t.Any) -> t.Any:
        try:
            return method(*args)
        except HTTPException:
            self.failed = True
            raise
        except Exception as exc:  # noqa: BLE001 - the server's parser: bad chunk size, truncated body, ...
            self.failed = True
            raise BadRequest(
                f"The request body could not be read ({type(exc).__name__})."
            ) from None

    def read(self, size: int | None = -1) -> bytes:
        return self._account(self._call(self._stream.read, size), size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._account(self._call(self._stream.readline, size), size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self.readline, b"")

    def drain(self) -> bool:
        """Read what the view left, up to DRAIN_BYTES; whether the body then ended cleanly.

        Under gunicorn this is what keeps a malformed body the view never read
        from getting a second, unasked-for 400 after the app's response: a
        failed read makes gunicorn close the connection (it drops an app's
        ``Connection: close``).
        """
        if self.ended or self.failed:
            return self.ended
        if self._remaining is not None and self._remaining > DRAIN_BYTES:
            return False
        drained = 0
        try:
            while not self.ended and drained < DRAIN_BYTES:
                data = self.read(8192)
                if not data:
                    break
                drained += len(data)
        except HTTPException:
            return False
        return self.ended
