"""The Werkzeug development server: ``python main.py`` in development.

With FLASK_DEBUG on (the development default) it runs Werkzeug's reloader and
interactive debugger, exactly as ``flask run --debug`` does; a stop is then
immediate. With FLASK_DEBUG off it serves one threaded process that drains on
SIGTERM: stop accepting, let requests in flight finish (up to
GRACEFUL_TIMEOUT), exit 0.

Either way requests go through ``launchers.dev_handler``: Werkzeug's server on its
own could be crashed by one malformed chunked body (docs/production.md, what
ALLOW_DEV_SERVER exposes).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server, run_simple

from app import create_app, lifecycle
from launchers.dev_handler import StrictRequestHandler
from settings import Settings

log = logging.getLogger("launchers.dev")


def serve(
    settings: Settings,
    *,
    app: Callable | None = None,
    run_simple_: Callable[..., Any] = run_simple,
) -> None:
    app = app or create_app(settings)
    if settings.debug:
        run_simple_(
            settings.host,
            settings.port,
            app,
            use_reloader=True,
            use_debugger=True,
            threaded=True,
            request_handler=StrictRequestHandler,
        )
        return
    server = make_server(
        settings.host, settings.port, app, threaded=True, request_handler=StrictRequestHandler
    )
    serve_until_stopped(server, settings.graceful_timeout)


def serve_until_stopped(server: BaseWSGIServer, graceful_timeout: float) -> None:
    # socketserver does not track daemon threads, so we do: joined with a deadline on
    # the way out, and still daemon so that a request that outlives it cannot hold the exit.
    workers: set[threading.Thread] = set()
    lock = threading.Lock()

    def handle(request: Any, client_address: Any) -> None:
        try:
            server.process_request_thread(request, client_address)
        finally:
            with lock:
                workers.discard(threading.current_thread())

    def process_request(request: Any, client_address: Any) -> None:
        t = threading.Thread(target=handle, args=(request, client_address), daemon=True)
        with lock:
            workers.add(t)
        t.start()

    server.process_request = process_request  # type: ignore[method-assign]

    def on_sigterm(signum: int, frame: Any) -> None:
        if lifecycle.shutting_down():
            return
        lifecycle.begin_shutdown()
        # shutdown() waits for serve_forever to return: never from the thread running it.
        threading.Thread(target=server.shutdown, daemon=True).start()

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
    server.socket.close()  # no new connections from here on
    deadline = time.monotonic() + graceful_timeout
    with lock:
        running = list(workers)
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
