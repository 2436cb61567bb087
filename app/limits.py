"""The request limits: the head's, which every production launcher enforces the same
way, and MAX_CONTENT_LENGTH for streamed (chunked) bodies too.

The head: the request line (414 above it), the number of header fields and the
size of one header line (431 above them), as gunicorn's ``limit_request_*``
settings enforce them.

The body: over MAX_CONTENT_LENGTH is a 413, never a cut body.

With Content-Length, werkzeug refuses a body over the limit before reading it.
Without one (Transfer-Encoding: chunked), werkzeug's ``LimitedStream`` stops
reading *at* the limit without raising, so ``request.get_json()`` parses the
first MAX_CONTENT_LENGTH bytes of a longer body: the client gets a misleading
400 (or, for a body that happens to parse, a silently truncated one). Reading
one byte past the limit tells a body at the limit from one over it.
"""

from __future__ import annotations

import typing as t

from flask import Flask, Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

REQUEST_LINE_BYTES = 8190
HEADER_FIELDS = 100
HEADER_LINE_BYTES = 8190


class StreamedBodyLimit(LimitedStream):
    """A streamed body allowed ``maximum`` bytes: the byte after them raises 413."""

    def __init__(self, stream: t.IO[bytes], maximum: int) -> None:
        super().__init__(stream, maximum + 1, is_max=True)
        self.maximum = maximum

    def readinto(self, buffer: t.Any) -> int | None:
        size = super().readinto(buffer)
        if self.tell() > self.maximum:
            raise RequestEntityTooLarge()
        return size


class LimitedRequest(Request):
    @cached_property
    def stream(self) -> t.IO[bytes]:
        maximum = self.max_content_length
        streamed = self.content_length is None and self.environ.get("wsgi.input_terminated")
        if maximum is None or not streamed or self.shallow:
            return super().stream
        return StreamedBodyLimit(self.environ["wsgi.input"], maximum)


def register_body_limit(app: Flask) -> None:
    app.request_class = LimitedRequest
