"""Stopping Werkzeug's server without losing a request: the requests in flight tracked,
the listener closed without resetting what it queued, and the wait for the rest.

Used by the dev launcher with and without the reloader (launchers/dev.py,
launchers/dev_reloader.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer

from launchers import listener

log = logging.getLogger("launchers.dev")
# serve_forever answers a shutdown within its poll interval (0.5 s by default); one that
# has not started yet (a SIGTERM that came first) has nothing to stop.
SHUTDOWN_WAIT = 2.0


@dataclass
class Requests:
    """The threads serving requests, which socketserver does not track (they are daemon
    threads, so that a request that outlives the drain cannot hold the exit)."""

    threads: set[threading.Thread] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self) -> list[threading.Thread]:
        with self.lock:
            return list(self.threads)


def track_requests(server: BaseWSGIServer) -> Requests:
    requests = Requests()

    def handle(request: Any, client_address: Any) -> None:
        try:
            server.process_request_thread(request, client_address)
        finally:
            with requests.lock:
                requests.threads.discard(threading.current_thread())

    def process_request(request: Any, client_address: Any) -> None:
        t = threading.Thread(target=handle, args=(request, client_address), daemon=True)
        with requests.lock:
            requests.threads.add(t)
        t.start()

    server.process_request = process_request  # type: ignore[method-assign]
    return requests


def stop_accepting(server: BaseWSGIServer) -> None:
    """New connections turned away, the queued ones accepted (launchers/listener.py), then
    serve_forever stopped and the listener closed. Never from serve_forever's thread."""
    listener.stop_queueing(server.socket)
    listener.wait_until_drained(server.socket)  # serve_forever accepts meanwhile
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(SHUTDOWN_WAIT)
    server.socket.close()


def drain(requests: Requests, graceful_timeout: float) -> None:
    """Wait for the requests in flight, up to ``graceful_timeout``."""
    deadline = time.monotonic() + graceful_timeout
    running = requests.running()
    log.info(
        "SIGTERM: stopped accepting; draining %d request(s) in flight (up to %gs)",
        len(running),
        graceful_timeout,
    )
    for t in running:
        t.join(max(0.0, deadline - time.monotonic()))
    left = sum(t.is_alive() for t in running)
    if left:
        log.warning(
            "graceful timeout (%gs) passed with %d request(s) still running; closing them",
            graceful_timeout,
            left,
        )
    else:
        log.info("drained: every request in flight was answered")
