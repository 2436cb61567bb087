"""Whether this process has begun to shut down; /readyz reports it.

Each launcher calls ``begin_shutdown()`` from its SIGTERM handling, so a load
balancer polling /readyz stops sending traffic while requests drain.
"""

from __future__ import annotations

import threading

_shutting_down = threading.Event()


def begin_shutdown() -> None:
    _shutting_down.set()


def shutting_down() -> bool:
    return _shutting_down.is_set()
