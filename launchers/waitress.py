"""waitress: the production server on Windows (and anywhere without fork).

waitress has no graceful stop of its own (Pylons/waitress#198: SIGTERM kills
it with requests in flight). We run its event loop ourselves so that SIGTERM
closes the listener, lets every request in flight finish and be flushed (up to
GRACEFUL_TIMEOUT), then returns normally: exit 0, never an ``os._exit`` while
a response is half written.

waitress's parser is also more lenient than gunicorn's: it has no limit on the
request line or on the number and size of header fields (only on their total
size), answers 501 to an unknown Transfer-Encoding, and accepts framings that
let a request be smuggled past a proxy that reads them differently
(Transfer-Encoding with Content-Length, a repeated or comma-led
Transfer-Encoding, obs-fold, chunked in HTTP/1.0). ``StrictParser`` refuses
them with a 4xx before waitress frames the body, so the production launchers
refuse the same requests (docs/production.md lists them).

Proxy headers are handled once, in the app (werkzeug's ProxyFix, driven by
TRUSTED_PROXY_HOPS), so waitress's own ``trusted_proxy`` stays off here.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from app import create_app, lifecycle
from app.limits import HEADER_FIELDS, HEADER_LINE_BYTES, REQUEST_LINE_BYTES
from app.security import HEADERS
from launchers.limits import ensure_open_files
from settings import Settings

log = logging.getLogger("launchers.waitress")

# Chunked framing is counted in waitress's body limit: leave room for it above
# MAX_CONTENT_LENGTH, so the app (not the framing) decides at the limit.
BODY_LIMIT_MARGIN = 64 * 1024


def options(settings: Settings) -> dict[str, Any]:
    """waitress adjustments from the settings."""
    return {
        "host": settings.host,
        "port": settings.port,
        "threads": settings.threads,
        # The default of 100 lets 100 stalled clients stop the server accepting
        # anyone else: keep room for slow clients (they cost a socket, not a thread).
        "connection_limit": settings.worker_connections,
        # select() cannot watch a descriptor above 1023; poll() has no such limit.
        "asyncore_use_poll": True,
        "channel_timeout": max(1, int(settings.request_timeout)),
        "cleanup_interval": 5,
        "max_request_body_size": settings.max_content_length + BODY_LIMIT_MARGIN,
        "max_request_header_size": 256 * 1024,
        "ident": "waitress",  # the Server header, without a version
        "clear_untrusted_proxy_headers": False,
        "log_socket_errors": settings.log_level == "debug",
    }


# --- a stricter request parser and JSON errors --------------------------------------

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_VERSION = re.compile(rb" HTTP/1\.[01]$")


def strict_parser_class():
    """waitress's parser, refusing what gunicorn refuses (built on first use: lazy import)."""
    from waitress.parser import HTTPRequestParser
    from waitress.utilities import BadRequest, RequestHeaderFieldsTooLarge

    class URITooLong(BadRequest):
        code = 414
        reason = "URI Too Long"

    class StrictParser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            problem = refusal(header_plus)
            if problem is None:
                super().parse_header(header_plus)
                return
            kind, message = problem
            # As waitress itself does for an oversized head: parse a neutral request
            # line so the error response has a version to answer with, then fail it.
            super().parse_header(b"GET / HTTP/1.0\r\n")
            error_class = {
                "line": URITooLong,
                "fields": RequestHeaderFieldsTooLarge,
            }.get(kind, BadRequest)
            self.error = error_class(message)

    return StrictParser


def refusal(header_plus: bytes) -> tuple[str, str] | None:
    """Why this request head must be refused, as (kind, message), or None."""
    first, _, rest = header_plus.partition(b"\r\n")
    if len(first) > REQUEST_LINE_BYTES:
        return "line", f"request line over {REQUEST_LINE_BYTES} bytes"
    if _CONTROL.search(first) or not _VERSION.search(first):
        return "bad", "malformed request line"
    lines = rest.split(b"\r\n") if rest else []
    if len(lines) > HEADER_FIELDS:
        return "fields", f"more than {HEADER_FIELDS} header fields"
    seen: dict[bytes, list[bytes]] = {}
    for line in lines:
        if len(line) > HEADER_LINE_BYTES:
            return "fields", f"a header field over {HEADER_LINE_BYTES} bytes"
        if line[:1] in (b" ", b"\t"):
            return "bad", "obsolete line folding"
        name, _, value = line.partition(b":")
        seen.setdefault(name.lower(), []).append(value.strip(b" \t"))
    encodings = seen.get(b"transfer-encoding", [])
    if encodings:
        if len(encodings) > 1 or encodings[0].lower() != b"chunked":
            return "bad", "Transfer-Encoding other than one 'chunked'"
        if b"content-length" in seen:
            return "bad", "Transfer-Encoding with Content-Length"
        if first.endswith(b"HTTP/1.0"):
            return "bad", "Transfer-Encoding in HTTP/1.0"
    if len(seen.get(b"content-length", [])) > 1:
        return "bad", "more than one Content-Length"
    if len(seen.get(b"host", [])) > 1:
        return "bad", "more than one Host"
    return None


def json_error_task_class():
    """waitress's own error responses as JSON under /api/, like the app's, with its headers."""
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            self.response_headers.extend(HEADERS.items())  # before write() sends the head
            error = self.request.error
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


def strict_channel_class():
    from waitress.channel import HTTPChannel

    class StrictChannel(HTTPChannel):
        parser_class = strict_parser_class()
        error_task_class = json_error_task_class()

    return StrictChannel


# --- serving and draining ---------------------------------------------------------


def _busy(channel: Any) -> bool:
    """A channel with a request in flight: its head received, or queued, run or being written.

    A connection still sending its request head is not in flight: like an idle
    keep-alive connection it is closed at once when shutdown begins.
    """
    request = getattr(channel, "request", None)
    return bool(
        (request is not None and request.headers_finished)
        or getattr(channel, "requests", None)
        or getattr(channel, "total_outbufs_len", 0)
    )


def serve(
    settings: Settings,
    *,
    app: Callable | None = None,
    create_server: Callable[..., Any] | None = None,
) -> None:
    if create_server is None:
        from waitress.server import create_server
    app = app or create_app(settings)
    ensure_open_files(settings.worker_connections)
    server = create_server(app, **options(settings))
    server.channel_class = strict_channel_class()
    stop_at: list[float] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        lifecycle.begin_shutdown()
        if not stop_at:
            stop_at.append(time.monotonic() + settings.graceful_timeout)
            server.trigger.pull_trigger()  # wake the loop now

    signal.signal(signal.SIGTERM, on_sigterm)
    server.print_listen("Serving on http://{}:{} (waitress)")
    try:
        _loop(server, stop_at)
    except KeyboardInterrupt:
        pass
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        server.asyncore.close_all(server._map)


def _loop(server: Any, stop_at: list[float]) -> None:
    adj = server.adj
    listening = True
    while True:
        server.asyncore.loop(
            timeout=0.2 if stop_at else adj.asyncore_loop_timeout,
            map=server._map,
            use_poll=adj.asyncore_use_poll,
            count=1,
        )
        if not stop_at:
            continue
        channels = [c for c in list(server._map.values()) if hasattr(c, "total_outbufs_len")]
        if listening:
            server.del_channel()  # stop accepting; the channels stay in the map
            server.socket.close()
            listening = False
            log.info(
                "SIGTERM: stopped accepting; draining %d request(s) in flight (up to %.1fs)",
                sum(map(_busy, channels)),
                stop_at[0] - time.monotonic(),
            )
        for c in channels:
            if not _busy(c):
                c.handle_close()  # idle keep-alive connection, or a head still arriving
        if not any(_busy(c) for c in channels):
            log.info("drained: every request in flight was answered")
            return
        if time.monotonic() > stop_at[0]:
            log.warning(
                "graceful timeout passed with %d request(s) still in flight; closing them",
                sum(map(_busy, channels)),
            )
            return
