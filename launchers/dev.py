"""The Werkzeug development server: ``python main.py`` in development.

With FLASK_DEBUG on (the development default) it runs Werkzeug's reloader and
interactive debugger, as ``flask run --debug`` does. With FLASK_DEBUG off it
serves one threaded process. Either way SIGTERM drains: stop accepting, let
requests in flight finish (up to GRACEFUL_TIMEOUT), exit 0; with the reloader,
its parent passes SIGTERM to the serving child and waits for it. Ctrl-C stops
at once.

Either way requests go through ``launchers.dev_handler``: Werkzeug's server on its
own could be crashed by one malformed chunked body (docs/production.md, what
ALLOW_DEV_SERVER exposes).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import werkzeug.serving
from werkzeug._reloader import run_with_reloader
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app, lifecycle
from launchers.dev_drain import drain, stop_accepting, track_requests
from launchers.dev_handler import StrictRequestHandler
from launchers.dev_reloader import serve_with_reloader
from launchers.ports import effective_uid
from settings import Settings
from settings.rules import is_loopback

log = logging.getLogger("launchers.dev")


def serve(
    settings: Settings,
    *,
    app: Callable | None = None,
    run_with_reloader_: Callable[..., Any] = run_with_reloader,
) -> None:
    _plain_logs_unless_a_terminal()
    if effective_uid() == 0 and not is_loopback(settings.host):
        log.warning(ROOT_WARNING, settings.host, settings.port)
    if settings.debug:
        serve_with_reloader(settings, lambda: app or create_app(settings), run_with_reloader_)
        return
    server = make_server(
        settings.host,
        settings.port,
        app or create_app(settings),
        threaded=True,
        request_handler=StrictRequestHandler,
    )
    serve_until_stopped(server, settings.graceful_timeout)


ROOT_WARNING = (
    "THE DEVELOPMENT SERVER IS RUNNING AS ROOT ON %s:%s: anyone who reaches it may run code "
    "as root through the debugger. Use a production launcher (APP_ENV=production), or HOST=127.0.0.1"
)


def _plain_logs_unless_a_terminal() -> None:
    """Werkzeug colours its lines (status codes, "Press CTRL+C to quit") with ANSI codes
    wherever they go; in a log file or a platform's log view they are noise."""
    werkzeug.serving._log_add_style = sys.stderr.isatty()


def serve_until_stopped(server: BaseWSGIServer, graceful_timeout: float) -> None:
    requests = track_requests(server)

    def on_sigterm(signum: int, frame: Any) -> None:
        if lifecycle.shutting_down():
            return
        lifecycle.begin_shutdown()
        # Not from this thread: it runs serve_forever, which must go on accepting meanwhile.
        threading.Thread(target=stop_accepting, args=(server,), daemon=True).start()

    interrupted = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        # Ctrl-C stops at once. Werkzeug's serve_forever swallows KeyboardInterrupt
        # and returns, so remember that it was an interrupt, not a drain.
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigint)
    log.info("Serving on http://%s:%s (Werkzeug, debugger off)", server.host, server.port)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        interrupted.set()
    if interrupted.is_set():
        server.server_close()
        return
    server.socket.close()  # no new connections from here on (stop_accepting closes it too)
    drain(requests, graceful_timeout)
