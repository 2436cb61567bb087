"""Whether this process has begun to shut down, and which requests are in flight.

Each launcher calls ``begin_shutdown()`` from its SIGTERM handling, so a load
balancer polling /readyz stops sending traffic while requests drain. The
requests in flight are what a worker killed for a timeout names in its last
log line (gunicorn's ``worker_abort`` hook, launchers/gunicorn.py).
"""

from __future__ import annotations

import threading
import time

from flask import Flask, request

from app.security import request_id

_shutting_down = threading.Event()
# id of the request object -> (method, path, request id, start): set and popped by
# one request each, read (copied) by the abort hook; dict operations are atomic.
_in_flight: dict[int, tuple[str, str, str, float]] = {}


def begin_shutdown() -> None:
    _shutting_down.set()


def shutting_down() -> bool:
    return _shutting_down.is_set()


def requests_in_flight() -> list[str]:
    """``METHOD path (N.Ns, id=...)`` for each request this process is running."""
    now = time.monotonic()
    return [
        f"{method} {path} ({now - started:.1f}s, id={rid})"
        for method, path, rid, started in tuple(_in_flight.values())
    ]


def _started() -> None:
    _in_flight[id(request._get_current_object())] = (
        request.method,
        request.path,
        request_id(),
        time.monotonic(),
    )


def _finished(error: BaseException | None) -> None:
    _in_flight.pop(id(request._get_current_object()), None)


def register_lifecycle(app: Flask) -> None:
    app.before_request(_started)
    app.teardown_request(_finished)
