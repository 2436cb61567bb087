"""waitress's request parser, held to launchers.http_rules, and its errors as JSON under /api/.

waitress 3.0.2 on its own is more lenient than gunicorn (docs/production.md lists
what it accepts): no limit on the request line or on the number and size of header
fields, any bytes up to a blank line taken as a chunked body's trailer section (so
a pipelined request after a last chunk without its final CRLF is swallowed), any
target its URL splitting does not choke on (``GET foo/bar``, ``GET example.com:443``),
and an uncaught ValueError, with no answer at all, for a target such as
``http://[::1``. It also sends ``100 Continue`` to a request without a body and then
never answers it. ``StrictParser`` checks the raw head and the chunked framing before
waitress acts on them, and answers what it refuses with a 4xx. And it answers 500 to
an app's ``Connection: close``, which ours sends when a body was left unread:
``honour_connection_close`` closes the connection instead.

Built on first use (``channel_class()``): waitress is imported only when it serves.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from app.security import HEADERS
from launchers import http_rules

log = logging.getLogger("launchers.waitress")
_BARE_LF = re.compile(rb"(?<!\r)\n")


# Where a request's environ keeps the function that makes waitress close after the response.
CLOSE_AFTER_RESPONSE = "launchers.waitress.close_after_response"


def channel_class() -> type:
    """waitress's channel with our parser, our error responses, and a task the app can close."""
    from waitress.channel import HTTPChannel
    from waitress.task import WSGITask

    class ClosableTask(WSGITask):
        def get_environment(self) -> dict:
            environ = super().get_environment()
            environ[CLOSE_AFTER_RESPONSE] = self.set_close_on_finish
            return environ

    class StrictChannel(HTTPChannel):
        parser_class = strict_parser_class()
        error_task_class = json_error_task_class()
        task_class = ClosableTask
        # At most one switch interval: the time a thread that wants the GIL back waits
        # before the interpreter makes its holder let go.
        send_wait = sys.getswitchinterval()

        def _flush_some_if_lockable(self, do_close: bool = True) -> None:
            # While a request's thread holds the output lock to send, waitress's loop
            # gave up on the lock and polled again at once, the socket still writable:
            # it spun, holding the GIL the sending thread needed to finish. Waiting
            # for the lock a moment lets it (docs/performance.md); past that, the loop
            # goes on with its other connections.
            if not self.outbuf_lock.acquire(timeout=self.send_wait):
                return
            try:  # waitress's own flush, with the lock held already (it is an RLock)
                super()._flush_some_if_lockable(do_close)
            finally:
                self.outbuf_lock.release()

    return StrictChannel


def honour_connection_close(app: Callable) -> Callable:
    """The app's ``Connection: close`` made waitress answer 500 instead (PEP 3333 keeps
    hop-by-hop headers from apps). The app sends it when the request's body was left
    unread, so nothing more can be read on that connection: close it after the response."""

    def closing(environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "connection"]
            if any(
                name.lower() == "connection" and value.strip().lower() == "close"
                for name, value in headers
            ):
                environ[CLOSE_AFTER_RESPONSE]()
            return start_response(status, kept, exc_info)

        return app(environ, start)

    return closing


def strict_parser_class() -> type:
    from waitress.parser import HTTPRequestParser, ParsingError
    from waitress.receiver import ChunkedReceiver
    from waitress.utilities import BadRequest

    errors = _error_classes()

    class StrictChunkedReceiver(ChunkedReceiver):
        """waitress's chunked body, with the trailer section checked line by line.

        waitress takes whatever comes before the next blank line as the trailer
        section: after ``0\\r\\n`` (its final CRLF missing) the next pipelined
        request was read as trailers, and never answered.
        """

        def received(self, s: bytes) -> int:
            consumed = super().received(s)
            if self.all_chunks_received and self.error is None:
                section = self.trailer
                if not self.completed:  # only the lines that have ended so far
                    end = section.rfind(http_rules.CRLF)
                    section = section[: end + 2] if end >= 0 else b""
                refused = http_rules.trailer_refusal(section)
                if refused is not None:
                    self.error = errors[refused.status](refused.reason)
            return consumed

    class StrictParser(HTTPRequestParser):
        def received(self, data: bytes) -> int:
            if not self.headers_finished and self.error is None:
                head = (self.header_plus + data).split(b"\r\n\r\n", 1)[0]
                refused = _before_the_head_ends(head)
                if refused is not None:
                    self._refuse(refused, head)
                    self.headers_finished = self.completed = True
                    return len(data)
            consumed = super().received(data)
            if self.headers_finished and (self.completed or self.error is not None):
                # Nothing more to read: a 100 Continue now would un-complete the
                # request in waitress's channel and it would never be answered.
                self.expect_continue = False
            return consumed

        def parse_header(self, header_plus: bytes) -> None:
            refused = http_rules.head_refusal(header_plus)
            if refused is not None:
                self._refuse(refused, header_plus)
                return
            try:
                super().parse_header(header_plus)
            except ValueError as error:  # urllib's, for a target it cannot split
                raise ParsingError(f"malformed request target ({error})") from None
            if self.chunked:
                self.body_rcv = StrictChunkedReceiver(self.body_rcv.buf)

        def _refuse(self, refused: http_rules.Refusal, head: bytes) -> None:
            # As waitress itself does for an oversized head: parse a neutral request
            # line so the error response has a version to answer with, then fail it.
            super().parse_header(b"GET / HTTP/1.0\r\n")
            self.error = errors.get(refused.status, BadRequest)(refused.reason)
            target = head.split(b"\r\n", 1)[0].split(b" ")[1:2]
            if target and target[0].startswith(b"/"):  # so that /api/ gets its answer in JSON
                self.path = target[0].partition(b"?")[0].decode("latin-1")

    return StrictParser


def _before_the_head_ends(head: bytes) -> http_rules.Refusal | None:
    """What is wrong with a head already, before waitress has all of it (and strips it)."""
    if _BARE_LF.search(head):
        # Its lines would wait for a CRLF CRLF that may never come: refuse it now.
        return http_rules.bad("a line ends with a bare LF")
    # One empty line may come before a request (RFC 9112 section 2.2); waitress would
    # also strip any other whitespace there, which gunicorn refuses.
    start = head[2:] if head.startswith(http_rules.CRLF) else head
    if start[:1] in (b" ", b"\t", b"\x0b", b"\x0c"):
        return http_rules.bad("whitespace before the request line")
    return None


def _error_classes() -> dict[int, type]:
    from waitress.utilities import BadRequest, RequestHeaderFieldsTooLarge

    class URITooLong(BadRequest):
        code = 414
        reason = "URI Too Long"

    class ExpectationFailed(BadRequest):
        code = 417
        reason = "Expectation Failed"

    return {
        400: BadRequest,
        414: URITooLong,
        417: ExpectationFailed,
        431: RequestHeaderFieldsTooLarge,
    }


def json_error_task_class() -> type:
    """waitress's own error responses as JSON under /api/, like the app's, with its headers."""
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            self.response_headers.extend(HEADERS.items())  # before write() sends the head
            error = self.request.error
            if (
                error.code < 500
            ):  # a refusal: a warning, as gunicorn logs them (repr: it may quote the client)
                log.warning("Invalid request from ip=%s: %r", self.channel.addr[0], error.body)
            path = getattr(self.request, "path", "") or ""
            if not (path == "/api" or path.startswith("/api/")):
                super().execute()
                return
            body = json.dumps(
                {"error": error.reason, "message": error.body, "status": error.code}
            ).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return JsonErrorTask
