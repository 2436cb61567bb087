"""The app's one WSGI layer: what it does around every request, in one call.

For each request: the head's limits (414, 431, app/limits.py) unless the server
refuses them itself (``leave_head_limits_to_server``), the request id
(kept when well formed, else a new one), the body guard (app.limits.RequestBody),
the in-flight record (app/lifecycle.py), and with METRICS on its duration
(app/metrics.py); for each response: the security headers
and X-Request-ID (HSTS over HTTPS, as the request arrived after ProxyFix),
``Connection: close`` when the body was not read to its end, and one access line.

It is one plain WSGI callable rather than Flask's before/after/teardown hooks,
which reach the request through context-local proxies many times over: the
same work costs a fraction of the time (docs/performance.md). Errors it finds
itself are answered by the app's own error pages, so they too get the headers.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask
from werkzeug.exceptions import HTTPException, NotFound

from app.errors import error_response
from app.lifecycle import IN_FLIGHT
from app.limits import RequestBody, has_body, head_refusal
from app.logs import ACCESS, log_access
from app.security import REQUEST_ID_KEY, add_security_headers, request_id_for

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
LAYER = "request_layer"  # where app.extensions keeps it
access_enabled = ACCESS.isEnabledFor


class RequestLayer:
    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.metrics = app.extensions.get("request_metrics")  # None: METRICS off
        # True once a launcher says its server refuses the heads itself (each line as sent).
        self.server_checks_head = False

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = environ[REQUEST_ID_KEY] = request_id_for(environ)
        body = None
        if has_body(environ):
            body = environ["wsgi.input"] = RequestBody(environ["wsgi.input"], environ)
        https = environ.get("wsgi.url_scheme") == "https"
        status = [500]

        def start(code: str, headers: list, exc_info: Any = None) -> Callable:
            status[0] = int(code[:3])
            add_security_headers(headers, https, rid)
            if body is None or body.drain():
                return start_response(code, headers, exc_info)
            try:
                return start_response(code, [*headers, ("Connection", "close")], exc_info)
            except AssertionError:
                # A server that keeps hop-by-hop headers to itself, as PEP 3333 says
                # (waitress, wsgiref), refuses it; such a server read the body itself.
                return start_response(code, headers, sys.exc_info())

        key = id(environ)
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        IN_FLIGHT[key] = (method, path, rid, started)
        query = environ.get("QUERY_STRING", "")
        metrics = self.metrics
        if metrics is not None:
            metrics.started()
        try:
            refusal = None if self.server_checks_head else head_refusal(environ)
            if refusal is None and query and ("__debugger__" in query or "%" in query):
                refusal = self._debugger_url(query)
            if refusal is not None:
                return error_response(self.app, refusal, environ)(environ, start)
            return self.wsgi_app(environ, start)
        finally:
            del IN_FLIGHT[key]
            if metrics is not None:
                metrics.finished(environ, status[0], time.perf_counter() - started)
            if access_enabled(logging.INFO):  # above info, no line is built
                if not path.isascii():  # as werkzeug decodes it for request.path
                    path = path.encode("latin-1", "replace").decode("utf-8", "replace")
                log_access(
                    method,
                    "/" + path.lstrip("/"),
                    query,
                    status[0],
                    (time.perf_counter() - started) * 1000,
                    rid,
                    environ.get("REMOTE_ADDR"),
                )

    def _debugger_url(self, query: str) -> HTTPException | None:
        """Without the debugger, its URLs (``?__debugger__=yes&cmd=...``) are plain 404s.

        The debugger is only ever wrapped around the app by the dev launcher with
        FLASK_DEBUG on (refused in production); answering its URLs with the page
        they were appended to would still tell a scanner it had found a Flask app.
        """
        if "__debugger__" in parse_qs(query, keep_blank_values=True) and not self.app.debug:
            return NotFound()
        return None


def register_middleware(app: Flask) -> None:
    layer = app.extensions[LAYER] = RequestLayer(app, app.wsgi_app)
    app.wsgi_app = layer  # type: ignore[method-assign]


def leave_head_limits_to_server(app: Any) -> bool:
    """For a launcher whose server refuses, before the app runs, the request heads over
    app.limits' limits: the app's layer then stops checking them again on every
    request. Whether ``app`` has the layer (an app not made by create_app has none).

    Only for a server that holds the same limits or stricter ones, on the head as sent.
    The app sees it rebuilt from the environ, where a header sent on two lines is one
    field: such a header, each line within the limit, is then served, not a 431.
    """
    layer = getattr(app, "extensions", {}).get(LAYER)
    if layer is None:
        return False
    layer.server_checks_head = True
    return True
