"""granian: the Rust HTTP server (hyper and tokio), through its WSGI interface.

The fastest launcher offered (see docs/performance.md): HTTP parsing, keep-alive
and slow request heads are handled in Rust, so Python only runs the app. An
optional dependency: ``pip install -r requirements-granian.txt``. Without it,
``APP_LAUNCHER=granian`` stops with the pip command (launchers.checks).

The app runs behind ``launchers.granian_guard``: it refuses the requests granian
passes on that gunicorn refuses (some let a request be smuggled), as far as the
WSGI environ shows them, and reads each body before the app runs, so a slow body
cannot hold the app's threads. What the environ cannot show is why granian should
face clients through a proxy that re-frames requests (docs/production.md).

``options(settings)`` is the single source of granian's configuration, as
``launchers.gunicorn.options`` is gunicorn's.

Shutdown: SIGTERM makes /readyz answer 503, empties each worker's listen queue
and waits for the requests of the connections it just accepted, closes the
listeners (a new connection is refused), lets requests in flight finish and exits
0; a worker still busy after GRACEFUL_TIMEOUT is killed (``workers_kill_timeout``).
A worker gets SIGTERM only once it can act on it. SIGINT (Ctrl-C) stops at once.
How: ``launchers.granian_stop``.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

# Imported at the top: launchers.checks loads this module only once it has found
# granian installed, and turns an import that still fails into LauncherUnavailable.
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from app import create_app
from launchers import granian_stop, metrics
from launchers.granian_guard import guarded
from settings import Settings

# hyper bounds the whole head (request line and headers: 431 above this) and the
# field count (431 above 100); the per-line limits are the app's (app/limits.py).
HEAD_BUFFER_BYTES = 32 * 1024  # nginx's default too: 4 buffers of 8 KiB


class ManyThreadsNotice(logging.Filter):
    """granian warns at every start when a worker may have more blocking threads than
    2 x CPUs + 1. Ours are meant to be many (one per connection, see options()): they
    wait on bodies, and only WEB_THREADS of them run the app at once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Configuration allows spawning up to")


# granian's own log records go to the app's handlers (one format, LOG_FORMAT):
# it replaces its default stdout handlers with these loggers, propagating to root.
LOG_CONFIG: dict[str, Any] = {
    "handlers": {},
    "filters": {"many_threads": {"()": ManyThreadsNotice}},
    "loggers": {
        "_granian": {"handlers": [], "propagate": True, "filters": ["many_threads"]},
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
        # One blocking thread per connection a worker accepts: a request's body is read
        # on its thread before the app runs (launchers.granian_guard), so a client
        # trickling its body parks a thread, never the app. The app itself runs on at
        # most WEB_THREADS of them at once: a few beat both one (a slow request would
        # hold its whole worker) and hundreds (a long tail). Figures: docs/performance.md.
        "blocking_threads": settings.worker_connections,
        "backpressure": settings.worker_connections,  # connections a worker keeps open
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


def wrap(app: Callable, settings: Settings) -> Callable:
    """The app as a granian worker serves it: behind our guard (the head limits are the
    app's own), with requests that carry none of the process's environment, in a
    worker whose SIGTERM first empties its listen queue (launchers.granian_stop)."""
    _environ_without_the_process_environment()
    granian_stop.handle_stop_signals(settings.port)
    return guarded(app, app_threads=settings.threads, max_body=settings.max_content_length)


def _environ_without_the_process_environment() -> None:
    """In a granian worker: each request's environ starts without ``os.environ``.

    granian builds the WSGI environ of every request from one copy of the worker's
    ``os.environ``, as CGI did (``granian.wsgi._callback_wrapper``, called once per
    worker, right after the app is loaded). SECRET_KEY and every other variable then
    sat in each request; one named like a header (``HTTP_X_REQUEST_ID``) read as if
    the client had sent it; and the app's head check walked them all, every request.
    That copy is now made from an empty environment: a request holds what granian and
    the client put in it. ``os.environ`` itself is not touched.
    """
    from granian import wsgi
    from granian.server import mp, mt

    build = wsgi._callback_wrapper

    def callback_wrapper(*args: Any, **kwargs: Any) -> Callable:
        with _COPYING:  # granian's threaded server builds one per worker thread
            real_os, wsgi.os = wsgi.os, _NoEnvironment  # type: ignore[assignment]
            try:
                return build(*args, **kwargs)
            finally:
                wsgi.os = real_os

    mp._wsgi_call_wrap = mt._wsgi_call_wrap = callback_wrapper


_COPYING = threading.Lock()


class _NoEnvironment:
    """What granian's WSGI module sees as ``os`` while it copies ``os.environ``."""

    environ: dict[str, str] = {}  # noqa: RUF012 - read, never written


def load_app(settings: Settings, target: str) -> Callable:
    """Build the app inside each worker (granian calls it with the target name).

    A module-level function over picklable settings, so it also works where
    workers are spawned rather than forked (macOS, Windows).
    """
    return wrap(create_app(settings), settings)


def serve(settings: Settings, *, app: Callable | None = None) -> None:
    server_class = granian_stop.boots_with_stop_signals_blocked(
        metrics.granian_server(Server, settings)
    )
    server = server_class(**options(settings))
    server.on_startup(granian_stop.stop_at_once_on_sigint(server))
    if app is not None:
        server.serve(target_loader=lambda target: wrap(app, settings))
    else:
        server.serve(target_loader=functools.partial(load_app, settings))
