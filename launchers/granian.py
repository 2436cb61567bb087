"""granian: the Rust HTTP server (hyper and tokio), through its WSGI interface.

The fastest launcher offered (see docs/performance.md): HTTP parsing, keep-alive
and slow clients are handled in Rust, so Python only runs the app. An optional
dependency: ``pip install -r requirements-granian.txt``. Without it,
``APP_LAUNCHER=granian`` stops with the pip command (launchers.checks).

``options(settings)`` is the single source of granian's configuration, as
``launchers.gunicorn.options`` is gunicorn's.

Shutdown: SIGTERM closes the listener at once (a new connection is refused),
lets requests in flight finish and exits 0; a worker still busy after
GRACEFUL_TIMEOUT is killed (``workers_kill_timeout``: without it one stop in
fifteen never ended here). granian gives no hook inside a worker when the stop
begins, so /readyz never gets to answer 503: readiness is signalled by the
refused connection. SIGINT (Ctrl-C) stops at once.
"""

from __future__ import annotations

import functools
import math
import signal
from collections.abc import Callable
from typing import Any

# Imported at the top: launchers.checks loads this module only once it has found
# granian installed, and turns an import that still fails into LauncherUnavailable.
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from app import create_app
from app.limits import HEADER_LINE_BYTES, REQUEST_LINE_BYTES
from settings import Settings

# Request limits (app.limits), as gunicorn's limit_request_* enforce them.
# hyper bounds the whole head (request line and headers: 431 above this) and the
# field count (431 above 100); it has no per-line limit, so limit_head() adds one.
HEAD_BUFFER_BYTES = 32 * 1024  # nginx's default too: 4 buffers of 8 KiB

# granian's own log records go to the app's handlers (one format, LOG_FORMAT):
# it replaces its default stdout handlers with these loggers, propagating to root.
LOG_CONFIG: dict[str, Any] = {
    "handlers": {},
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    },
}


def options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``granian.server.Server`` from our settings."""
    return {
        "target": "wsgi:app",  # a name for logs and process titles; the app comes from load_app
        "address": settings.host,
        "port": settings.port,
        "interface": Interfaces.WSGI,
        "workers": settings.workers,
        # Python threads per worker that run the app (WEB_THREADS): a few beat both one
        # (a slow request would hold its whole worker) and granian's default of hundreds
        # (a long tail). Figures: docs/performance.md.
        "blocking_threads": settings.threads,
        "http": HTTPModes.http1,  # what proxies and platforms speak to the app
        "websockets": False,  # not available through WSGI; saves a log line
        "http1_settings": HTTP1Settings(
            # Also the idle keep-alive timeout: hyper's timer covers waiting for
            # the next request's head as well as a slowly sent one.
            header_read_timeout=max(1, int(settings.keepalive * 1000)),
            keep_alive=True,
            max_buffer_size=HEAD_BUFFER_BYTES,
        ),
        "workers_kill_timeout": max(1, math.ceil(settings.graceful_timeout)),
        "respawn_failed_workers": True,  # as gunicorn's master replaces a dead worker
        "log_enabled": True,
        "log_level": LogLevels(settings.log_level),
        "log_dictconfig": LOG_CONFIG,
        "log_access": False,  # the app writes the access log (one format for every launcher)
    }


def limit_head(app: Callable) -> Callable:
    """414 for a request target over 8 KiB, 431 for a header over 8 KiB.

    The target is measured as granian hands it over: the path decoded, the
    query as sent (a percent-encoded path counts once decoded; hyper's 32 KiB
    head limit still bounds it).
    """
    from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestURITooLarge

    def limited(environ: dict, start_response: Callable) -> Any:
        target = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if target > REQUEST_LINE_BYTES:
            return RequestURITooLarge()(environ, start_response)
        for key, value in environ.items():
            if key[:5] == "HTTP_" and len(value) > HEADER_LINE_BYTES:
                return RequestHeaderFieldsTooLarge()(environ, start_response)
        return app(environ, start_response)

    return limited


def load_app(settings: Settings, target: str) -> Callable:
    """Build the app inside each worker (granian calls it with the target name).

    A module-level function over picklable settings, so it also works where
    workers are spawned rather than forked (macOS, Windows).
    """
    return limit_head(create_app(settings))


def _stop_at_once_on_sigint(server: Any) -> Callable[[], None]:
    """granian drains on SIGINT as on SIGTERM; Ctrl-C should stop at once, as elsewhere."""

    def install() -> None:  # an on_startup hook: runs after granian sets its signal handlers
        def on_sigint(signum: int, frame: Any) -> None:
            server.workers_kill_timeout = 0.01  # kill the workers instead of waiting for them
            server.signal_handler_interrupt()

        signal.signal(signal.SIGINT, on_sigint)

    return install


def serve(settings: Settings, *, app: Callable | None = None) -> None:
    server = Server(**options(settings))
    server.on_startup(_stop_at_once_on_sigint(server))
    if app is not None:
        limited = limit_head(app)
        server.serve(target_loader=lambda target: limited)
    else:
        server.serve(target_loader=functools.partial(load_app, settings))
