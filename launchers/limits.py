"""Room for every connection a server is allowed to hold: the soft open-files limit.

Each connection is a file descriptor. systemd starts services with a soft limit
of 1024 (hard 524288), many shells with 1024 too: with WORKER_CONNECTIONS=1000 a
process runs out before its connection limit, and then waitress stops answering
anyone and gevent logs a traceback per refused accept. A process may raise its
own soft limit up to the hard one without privileges, as nginx's
worker_rlimit_nofile does.
"""

from __future__ import annotations

import logging

log = logging.getLogger("launchers.limits")

MARGIN = 64  # listeners, log streams, pipes, the event loop's own descriptors


def ensure_open_files(connections: int) -> None:
    """Raise the soft RLIMIT_NOFILE so that ``connections`` (plus a margin) fit."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    needed = connections + MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "open files limit is %d (hard limit %d): fewer than WORKER_CONNECTIONS=%d "
            "connections fit. Raise the hard limit (systemd: LimitNOFILE=; Docker: --ulimit "
            "nofile=) or lower WORKER_CONNECTIONS.",
            target,
            hard,
            connections,
        )
