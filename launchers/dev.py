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
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import werkzeug.serving
from werkzeug._reloader import _get_args_for_reloading, reloader_loops, run_with_reloader
from werkzeug.debug import DebuggedApplication
from werkzeug.serving import BaseWSGIServer, is_running_from_reloader, make_server

from app import create_app, lifecycle
from launchers import listener
from launchers.dev_handler import StrictRequestHandler
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
    if os.geteuid() == 0 and not is_loopback(settings.host):
        log.warning(ROOT_WARNING, settings.host, settings.port)
    app = app or create_app(settings)
    if settings.debug:
        serve_with_reloader(settings, app, run_with_reloader_)
        return
    server = make_server(
        settings.host, settings.port, app, threaded=True, request_handler=StrictRequestHandler
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


def serve_with_reloader(settings: Settings, app: Callable, run_with_reloader_: Callable) -> None:
    """``run_simple(use_reloader=True, use_debugger=True)``, with a stop that drains.

    Werkzeug's reloader parent binds the socket and runs the server in a child it
    restarts on each change; on SIGTERM both just exited (the child's requests in
    flight were cut). Here the parent passes SIGTERM on and waits for the child,
    which drains like the server without the reloader.
    """
    debugged = DebuggedApplication(app, evalex=True)
    debugged.trusted_hosts.append(settings.host)
    fd = int(os.environ["WERKZEUG_SERVER_FD"]) if is_running_from_reloader() else None
    server = make_server(
        settings.host,
        settings.port,
        debugged,
        threaded=True,
        request_handler=StrictRequestHandler,
        fd=fd,
    )
    if fd is not None:
        os.close(fd)  # make_server listens on a duplicate: keep one, or a stop never closes it
    server.socket.set_inheritable(True)
    os.environ["WERKZEUG_SERVER_FD"] = str(server.fileno())
    if not is_running_from_reloader():
        server.log_startup()
        logging.getLogger("werkzeug").info("Press CTRL+C to quit")
    reloader_loops[DRAINING] = _draining_reloader(server, settings.graceful_timeout)
    try:
        run_with_reloader_(server.serve_forever, reloader_type=DRAINING)
    finally:
        server.server_close()


DRAINING = "draining"


def _draining_reloader(server: BaseWSGIServer, graceful_timeout: float) -> type:
    """Werkzeug's own reloader (its "auto" choice), with SIGTERM handled on both sides."""
    base = reloader_loops["auto"]

    class DrainingReloader(base):  # type: ignore[misc, valid-type]
        def restart_with_reloader(self) -> int:
            """The parent: as Werkzeug's, but SIGTERM goes to the child, which drains."""
            child: list[subprocess.Popen] = []

            def pass_on(signum: int, frame: Any) -> None:
                if child and child[0].poll() is None:
                    child[0].send_signal(signal.SIGTERM)
                server.socket.close()  # the child's copy alone keeps the listener open now

            signal.signal(signal.SIGTERM, pass_on)
            while True:
                log.info(" * Restarting with %s", self.name)
                environ = {**os.environ, "WERKZEUG_RUN_MAIN": "true"}
                child[:] = [
                    subprocess.Popen(_get_args_for_reloading(), env=environ, close_fds=False)
                ]
                try:
                    code = child[0].wait()
                except BaseException:  # Ctrl-C: at once, the child with it
                    child[0].kill()
                    raise
                if code != 3:  # 3: a file changed, start again
                    return code

        def __enter__(self) -> Any:
            """The child, before its server starts: SIGTERM drains, then exits 0."""
            track = track_requests(server)

            def drain_and_exit(signum: int, frame: Any) -> None:
                if lifecycle.shutting_down():
                    return  # sent twice (to the process group, and passed on by the parent)
                lifecycle.begin_shutdown()
                listener.stop_queueing(server.socket)
                listener.wait_until_drained(server.socket)  # serve_forever accepts meanwhile
                server.shutdown()  # serve_forever, in another thread, returns
                server.socket.close()  # the parent has closed its copy: refused from here on
                drain(track, graceful_timeout)
                sys.exit(0)

            signal.signal(signal.SIGTERM, drain_and_exit)
            return super().__enter__()

    return DrainingReloader


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


def serve_until_stopped(server: BaseWSGIServer, graceful_timeout: float) -> None:
    requests = track_requests(server)

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
    drain(requests, graceful_timeout)
