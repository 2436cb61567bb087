"""In front of the app under granian: what granian lets through, and slow bodies.

**Requests granian accepts and gunicorn refuses.** granian (hyper) parses the
request in Rust and hands the app a WSGI environ, so the raw bytes are out of
reach; what the environ still shows is refused here with a 400 (417 for an
unknown expectation) and ``Connection: close``, before the app runs, so granian
closes the connection and never serves a request hidden behind the refused one:

- a Transfer-Encoding other than one ``chunked``: granian joins repeated fields
  with a comma (``chunked,chunked``), and frames ``,chunked`` and
  ``gzip, chunked`` as chunked; each let a pipelined request be smuggled;
- Transfer-Encoding with Content-Length (granian names ``Transfer_Encoding``
  HTTP_TRANSFER_ENCODING, where other servers drop it);
- a Host with a comma: two Host fields, joined;
- an empty PATH_INFO (authority-form, ``GET example.com:443``: the app would
  redirect it), ``*`` with any method but OPTIONS, a method not in upper case;
- an Expect other than ``100-continue``.

What the environ cannot show stays accepted (docs/production.md lists it, and why
granian belongs behind a proxy that normalises requests).

**Slow bodies.** granian runs the app on a blocking thread as soon as the head has
arrived, and the app's reads of the body block that thread: a few clients
trickling their bodies held every thread, and nothing else was served. Here the
body is read first, on one of granian's many blocking threads
(``blocking_threads`` = WORKER_CONNECTIONS, one per connection it accepts), and
the app only then takes one of WEB_THREADS slots, so a slow body costs a parked
thread, never a slot. Bodies over MAX_CONTENT_LENGTH are not read here: the app
answers them 413.
"""

from __future__ import annotations

import html
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from app.security import HEADERS
from launchers import http_rules
from launchers.http_rules import Refusal

log = logging.getLogger("launchers.granian")


def refusal(environ: dict[str, Any]) -> Refusal | None:
    """Why granian's environ shows a request gunicorn would have refused, or None."""
    method = environ.get("REQUEST_METHOD", "")
    if not http_rules.METHOD.fullmatch(method.encode("latin-1", "replace")):
        return http_rules.bad("malformed method")
    path = environ.get("PATH_INFO", "")
    if path == "*":
        if method != "OPTIONS":
            return http_rules.bad("'*' is a target of OPTIONS only")
    elif not path.startswith("/"):
        return http_rules.bad("malformed request target")
    encoding = environ.get("HTTP_TRANSFER_ENCODING")
    if encoding is not None:
        if encoding.strip(" \t").lower() != "chunked":
            return http_rules.bad("Transfer-Encoding other than one 'chunked'")
        if "CONTENT_LENGTH" in environ:
            return http_rules.bad("Transfer-Encoding with Content-Length")
    if "," in environ.get("HTTP_HOST", ""):
        return http_rules.bad("more than one Host")
    expect = environ.get("HTTP_EXPECT")
    if expect is not None and expect.lower() != "100-continue":
        return Refusal(417, "unsupported expectation")
    return None


def refuse(environ: dict[str, Any], start_response: Callable, refused: Refusal) -> list[bytes]:
    """The refusal as the app would answer it (JSON under /api/), closing the connection."""
    reason = HTTPStatus(refused.status).phrase
    path = environ.get("PATH_INFO", "")
    if path == "/api" or path.startswith("/api/"):
        content_type = "application/json"
        body = json.dumps(
            {"error": reason, "message": refused.reason, "status": refused.status}
        ).encode()
    else:
        content_type = "text/html; charset=utf-8"
        body = (
            f"<!doctype html>\n<title>{refused.status} {reason}</title>\n"
            f"<h1>{reason}</h1>\n<p>{html.escape(refused.reason)}</p>\n"
        ).encode()
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),  # granian then closes instead of reading what follows
        *HEADERS.items(),
    ]
    start_response(f"{refused.status} {reason}", headers)
    return [body]


def read_body_first(environ: dict[str, Any], max_body: int) -> None:
    """Replace wsgi.input with the whole body, read now (up to one byte past ``max_body``)."""
    length = environ.get("CONTENT_LENGTH", "")
    if length:
        size = int(length) if length.isdigit() else 0
        if not 0 < size <= max_body:
            return  # nothing to read, or the app refuses it (413) without reading it
    elif environ.get("HTTP_TRANSFER_ENCODING") is not None:
        size = max_body + 1  # one byte past the limit tells the app the body is over it
    else:
        return  # no body: HTTP/1.1 frames one only by Content-Length or chunks
    environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(size))


def guarded(app: Callable, *, app_threads: int, max_body: int) -> Callable:
    """``app`` behind the refusals above, its body read before it takes one of ``app_threads``."""
    slots = threading.BoundedSemaphore(app_threads)

    def guard(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        refused = refusal(environ)
        if refused is not None:
            # A warning, as gunicorn logs the requests it refuses; the reason is ours.
            log.warning(
                "Invalid request from ip=%s: %s", environ.get("REMOTE_ADDR"), refused.reason
            )
            return refuse(environ, start_response, refused)
        read_body_first(environ, max_body)
        with slots:
            # The response is built inside; granian iterates what the app returns
            # after this, outside the slot (for this app, bytes already made).
            return app(environ, start_response)

    return guard
