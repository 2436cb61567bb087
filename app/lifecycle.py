"""Whether this process has begun to shut down, and which requests are in flight.

Each launcher calls ``begin_shutdown()`` from its SIGTERM handling, so a load
balancer polling /readyz stops sending traffic while requests drain. The
requests in flight are what a worker killed for a timeout names in its last
log line (gunicorn's ``worker_abort`` hook, launchers/gunicorn.py).
"""

from __future__ import annotations

import threading
import time

_shutting_down = threading.Event()
# A key per request -> (method, raw PATH_INFO, request id, start): set and popped by
# the app's WSGI layer (app/middleware.py), once each per request; read (copied) by
# the abort hook. Dict operations are atomic.
IN_FLIGHT: dict[int, tuple[str, str, str, float]] = {}


def begin_shutdown() -> None:
    _shutting_down.set()


def shutting_down() -> bool:
    return _shutting_down.is_set()


def requests_in_flight() -> list[str]:
    """``METHOD path (N.Ns, id=...)`` for each request this process is running."""
    now = time.perf_counter()
    return [
        f"{method} {_decoded(path)} ({now - started:.1f}s, id={rid})"
        for method, path, rid, started in tuple(IN_FLIGHT.values())
    ]


def _decoded(path_info: str) -> str:
    # As werkzeug decodes PATH_INFO for request.path.
    return "/" + path_info.encode("latin-1", "replace").decode("utf-8", "replace").lstrip("/")
