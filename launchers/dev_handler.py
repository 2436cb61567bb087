"""Werkzeug's development server request handler, held to launchers.http_rules.

The dev server answers one request per connection (it always sends
``Connection: close``), so nothing can be smuggled past it; but with
ALLOW_DEV_SERVER it may face the internet, and on its own it:

- crashed the whole process (a segfault: no answer, nothing logged) on a chunked
  body that ends before its chunk does: Werkzeug's ``DechunkedInput`` writes a
  short read into the buffer it was handed, which shrinks it under the reader
  (smaller sizes returned stray heap bytes instead);
- read chunk sizes as Python's ``int()`` does (``0x3``, ``+3``, ``0_3``) and never
  looked at the trailer section;
- died without an answer on a target ``urllib`` cannot split (``http://[::1``);
- answered ``HTTP/2.0`` with a bare 505 body (no status line, no headers) and a
  request line without a version as HTTP/0.9, a body with no status line.
- after its response, kept the connection (and its thread) open for as long as a
  client that had sent more, such as a second request, waited for an answer.

Here the request line and head are checked first (the same rules as waitress
under our parser, and gunicorn), refusals are whole HTTP/1.1 responses logged as
warnings, and a chunked body is read by ``ChunkedBody``, which refuses what it
cannot read (the app answers 400) and never writes past what it received.
"""

from __future__ import annotations

import email.parser
import io
from typing import Any

from werkzeug.serving import DechunkedInput, WSGIRequestHandler

from app.limits import HEADER_FIELDS, HEADER_LINE_BYTES
from launchers import http_rules
from launchers.http_rules import CRLF


class ChunkedBody(io.RawIOBase):
    """A chunked request body, read strictly: any fault is an OSError (a 400 in the app)."""

    def __init__(self, rfile: Any) -> None:
        self._rfile = rfile
        self._left = 0  # bytes of the current chunk still to read
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._ended:
            return 0
        if self._left == 0:
            self._left = self._next_chunk_size()
            if self._left == 0:
                self._ended = True
                return 0
        wanted = min(len(buffer), self._left)
        data = self._rfile.read(wanted)
        if len(data) != wanted:
            # Never hand back more than was received: the caller trusts this count.
            raise OSError("the chunked body ended inside a chunk")
        buffer[:wanted] = data
        self._left -= wanted
        if self._left == 0 and self._rfile.read(2) != CRLF:
            raise OSError("a chunk does not end with CRLF")
        return wanted

    def _line(self) -> bytes:
        line = self._rfile.readline(HEADER_LINE_BYTES + 1)
        if not line.endswith(CRLF):
            raise OSError("a chunk-size or trailer line is malformed, too long or cut short")
        return line

    def _next_chunk_size(self) -> int:
        size = http_rules.chunk_size(self._line()[:-2])
        if size is None:
            raise OSError("malformed chunk size")
        if size == 0:
            self._read_trailers()
        return size

    def _read_trailers(self) -> None:
        lines = []
        while (line := self._line()) != CRLF:
            lines.append(line)
            if len(lines) > HEADER_FIELDS:
                raise OSError("too many trailer fields")
        refused = http_rules.trailer_refusal(b"".join(lines))
        if refused is not None:
            raise OSError(refused.reason)


class WhatHasArrived:
    """A buffered reader whose ``read`` returns what has arrived, waiting only if
    nothing has (``read1``); everything else is the reader's."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        return self._reader.read1(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class StrictRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler: strict about the head and the chunked body; no access log
    of its own (the app writes one line per request)."""

    def parse_request(self) -> bool:
        """http.server's, with our limits and rules: it would allow 99 header fields,
        lines of 64 KiB, bare LF, and write an error to HTTP/0.9 or 2.0 without a
        status line."""
        self.request_version = "HTTP/1.0"  # what an error is answered in, until known
        self.command = None
        self.close_connection = True  # one request per connection, as Werkzeug answers
        line = self.raw_requestline
        if line == CRLF:  # one empty line may come before a request (RFC 9112 section 2.2)
            line = self.raw_requestline = self.rfile.readline(65537)
        self.requestline = line.decode("latin-1").rstrip("\r\n")
        if not line.endswith(CRLF):
            return self._refuse(http_rules.bad("the request line does not end with CRLF"))
        refused = http_rules.request_line_refusal(line[:-2])
        if refused is not None:  # before waiting for a head that may never come
            return self._refuse(refused)
        lines = self._read_head()
        if isinstance(lines, http_rules.Refusal):
            return self._refuse(lines)
        refused = http_rules.head_refusal(line + b"".join(lines))
        if refused is not None:
            return self._refuse(refused)
        method, target, version = self.requestline.split(" ")
        self.command, self.request_version = method, version
        # As http.server does (gh-87389): a path starting with // would read as a host.
        self.path = "/" + target.lstrip("/") if target.startswith("//") else target
        text = b"".join(lines).decode("iso-8859-1")
        self.headers = email.parser.Parser(_class=self.MessageClass).parsestr(text)
        return True

    def _read_head(self) -> list[bytes] | http_rules.Refusal:
        """The field lines up to the empty line that ends the head, or why not."""
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(HEADER_LINE_BYTES + 1)
            if line == CRLF:
                return lines
            if not line.endswith(b"\n") or line == b"\n":
                if len(line) > HEADER_LINE_BYTES:
                    return http_rules.Refusal(431, f"a header field over {HEADER_LINE_BYTES} bytes")
                return http_rules.bad("the head ended early, or with a bare LF")
            lines.append(line)
            if len(lines) > HEADER_FIELDS:
                return http_rules.Refusal(431, f"more than {HEADER_FIELDS} header fields")

    def _refuse(self, refused: http_rules.Refusal) -> bool:
        self.close_connection = True
        self.log("warning", "refused %r: %s", self.requestline[:200], refused.reason)
        self._refused = True  # logged just above, with the reason
        self.send_error(refused.status, None, refused.reason)
        return False

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        if isinstance(environ["wsgi.input"], DechunkedInput):
            environ["wsgi.input"] = ChunkedBody(self.rfile)
        # The body is read through wsgi.input, which holds the reader. What Werkzeug
        # reads through self.rfile after this is what the client sent past its request,
        # read once the response is out (so that the client sees it, not a reset) with
        # a read(10 MB) that waited for the client to hang up: one that had sent a
        # second request and waited for its answer held the thread and the connection.
        self.rfile = WhatHasArrived(self.rfile)
        return environ

    def log_error(self, format: str, *args: Any) -> None:
        # http.server logs every refusal through here; a client's bad request is a
        # warning (as gunicorn logs it), not an error of ours.
        if not getattr(self, "_refused", False):
            self.log("warning", format, *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass
