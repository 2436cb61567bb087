"""waitress: the production server on Windows (and anywhere without fork).

waitress has no graceful stop of its own (Pylons/waitress#198: SIGTERM kills
it with requests in flight). We run its event loop ourselves so that SIGTERM
closes the listener, lets every request in flight finish and be flushed (up to
GRACEFUL_TIMEOUT), then returns normally: exit 0, never an ``os._exit`` while
a response is half written.

waitress's parser is also more lenient than gunicorn's (no limit on the request
line or on the number and size of header fields, framings that let a request be
smuggled, a swallowed request after a bad trailer section, a 501 for an unknown
Transfer-Encoding): our channel parses with ``launchers.waitress_parser``, which
refuses what gunicorn refuses, so the production launchers refuse the same
requests (docs/production.md lists them).

Proxy headers are handled once, in the app (werkzeug's ProxyFix, driven by
TRUSTED_PROXY_HOPS), so waitress's own ``trusted_proxy`` stays off here.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from app import create_app, lifecycle
from launchers import listener, waitress_parser
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


# --- serving and draining ---------------------------------------------------------


def _busy(channel: Any) -> bool:
    """A channel with a request in flight: its head received, or queued, run or being written.

    A connection still sending its request head is not in flight (``_on_its_way``).
    """
    request = getattr(channel, "request", None)
    return bool(
        (request is not None and request.headers_finished)
        or getattr(channel, "requests", None)
        or getattr(channel, "total_outbufs_len", 0)
    )


def _on_its_way(channel: Any) -> bool:
    """A request on its way: a new connection that has sent nothing yet, or a head begun.
    A stop gives it up to ``listener.FIRST_REQUEST_LIMIT`` (launchers/listener.py)."""
    unread = channel.last_activity == channel.creation_time  # no byte received or sent
    return unread or getattr(channel, "request", None) is not None


class QueueWarning:
    """waitress's "Task queue depth is N", said at most once every ``every`` seconds.

    waitress warns each time a request has to wait for a free thread: under load that
    is nearly every request, each a line written to stderr while waitress holds the
    lock its threads take their next request from. The first is said at once, then
    one a period, with the deepest queue and how many requests waited.
    """

    def __init__(self, logger: Any, threads: int, every: float = 10.0, clock=time.monotonic):
        self.logger, self.threads, self.every, self.clock = logger, threads, every, clock
        self.next_at = -float("inf")
        self.waited = self.deepest = 0

    def warning(self, message: str, depth: int) -> None:
        # waitress calls it with its task lock held: one caller at a time.
        self.waited += 1
        self.deepest = max(self.deepest, depth)
        now = self.clock()
        if now < self.next_at:
            return
        self.logger.warning(
            "Task queue depth is %d: %d request(s) waited for one of the %d threads "
            "(WEB_THREADS) since this was last said; said at most every %gs",
            self.deepest,
            self.waited,
            self.threads,
            self.every,
        )
        self.next_at = now + self.every
        self.waited = self.deepest = 0


def make_server(
    settings: Settings, app: Callable, create_server: Callable[..., Any] | None = None
) -> Any:
    """waitress's server as we run it: our channel, which refuses the request heads
    app.limits refuses (the app need not check them again), and its queue warning
    said seldom."""
    from app.middleware import leave_head_limits_to_server

    if create_server is None:
        from waitress.server import create_server
    server = create_server(waitress_parser.honour_connection_close(app), **options(settings))
    server.channel_class = waitress_parser.channel_class()
    leave_head_limits_to_server(app)
    dispatcher = server.task_dispatcher
    dispatcher.queue_logger = QueueWarning(dispatcher.queue_logger, settings.threads)
    return server


def serve(
    settings: Settings,
    *,
    app: Callable | None = None,
    create_server: Callable[..., Any] | None = None,
) -> None:
    app = app or create_app(settings)
    ensure_open_files(settings.worker_connections)
    server = make_server(settings, app, create_server)
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


def _queue_drainer(sock: Any) -> Callable[[], bool]:
    """After SIGTERM: new connections turned away; then a test, True once none is queued
    (or after the handshake allowance plus ``listener.DRAIN_LIMIT``, whatever waits)."""
    listener.stop_queueing(sock)
    check_from = time.monotonic() + listener.HANDSHAKE_ALLOWANCE
    give_up = check_from + listener.DRAIN_LIMIT

    def drained() -> bool:
        now = time.monotonic()
        return now >= check_from and (now > give_up or not listener.is_queued(sock))

    return drained


def _loop(server: Any, stop_at: list[float]) -> None:
    adj = server.adj
    listening = True
    queue_drained: Callable[[], bool] | None = None
    first_requests_by = 0.0
    while True:
        server.asyncore.loop(
            timeout=0.005
            if listening and stop_at
            else 0.2
            if stop_at
            else adj.asyncore_loop_timeout,
            map=server._map,
            use_poll=adj.asyncore_use_poll,
            count=1,
        )
        if not stop_at:
            continue
        if listening:
            # Closing the listener with connections still queued would reset them
            # (a POST behind nginx then fails): turn new ones away and go on
            # accepting until none waits (launchers/listener.py).
            if queue_drained is None:
                queue_drained = _queue_drainer(server.socket)
            if not queue_drained():
                continue
        channels = [c for c in list(server._map.values()) if hasattr(c, "total_outbufs_len")]
        if listening:
            server.del_channel()  # stop accepting; the channels stay in the map
            server.socket.close()
            listening = False
            first_requests_by = time.monotonic() + listener.FIRST_REQUEST_LIMIT
            log.info(
                "SIGTERM: stopped accepting; draining %d request(s) in flight (up to %.1fs)",
                sum(map(_busy, channels)),
                stop_at[0] - time.monotonic(),
            )
        waiting = time.monotonic() < first_requests_by
        for c in channels:
            if not _busy(c) and not (waiting and _on_its_way(c)):
                c.handle_close()  # an idle keep-alive connection, or too slow a client
        if not any(_busy(c) or (waiting and _on_its_way(c)) for c in channels):
            log.info("drained: every request in flight was answered")
            return
        if time.monotonic() > stop_at[0]:
            log.warning(
                "graceful timeout passed with %d request(s) still in flight; closing them",
                sum(map(_busy, channels)),
            )
            return
