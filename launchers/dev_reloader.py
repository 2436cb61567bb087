"""Werkzeug's reloader and debugger, as ``run_simple(use_reloader=True, use_debugger=True)``
runs them, with a stop that drains.

Werkzeug's reloader parent binds the socket and runs the server in a child it
starts again on each change. On SIGTERM both just exited: the parent's
subprocess.call killed the child with its requests in flight. Here the parent
passes SIGTERM on and waits; the child drains like the server without the
reloader (launchers/dev_drain.py); both exit 0. Ctrl-C stops both at once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from werkzeug._reloader import _get_args_for_reloading, reloader_loops
from werkzeug.debug import DebuggedApplication
from werkzeug.serving import BaseWSGIServer, is_running_from_reloader, make_server

from app import lifecycle
from launchers.dev_drain import drain, stop_accepting, track_requests
from launchers.dev_handler import StrictRequestHandler
from launchers.metrics import worker_exited
from settings import Settings

log = logging.getLogger("launchers.dev")
DRAINING = "draining"  # our reloader's name among Werkzeug's reloader_loops


def _parent_never_serves(environ: dict, start_response: Callable) -> list[bytes]:
    raise RuntimeError("the reloader's parent only holds the socket")


def serve_with_reloader(
    settings: Settings, build_app: Callable[[], Callable], run_with_reloader: Callable
) -> None:
    """The app is built in the child only: the parent holds the socket and restarts it."""
    if is_running_from_reloader():
        app = DebuggedApplication(build_app(), evalex=True)
        app.trusted_hosts.append(settings.host)
        fd: int | None = int(os.environ["WERKZEUG_SERVER_FD"])
    else:
        app, fd = _parent_never_serves, None
    server = make_server(
        settings.host,
        settings.port,
        app,
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
        run_with_reloader(server.serve_forever, reloader_type=DRAINING)
    finally:
        server.server_close()


def _draining_reloader(server: BaseWSGIServer, graceful_timeout: float) -> type:
    """Werkzeug's own reloader (its "auto" choice), with SIGTERM handled on both sides."""
    base = reloader_loops["auto"]

    class DrainingReloader(base):  # type: ignore[misc, valid-type]
        def restart_with_reloader(self) -> int:
            """The parent: as Werkzeug's, but SIGTERM goes to the child, which drains."""
            child: list[subprocess.Popen] = []
            stopping = threading.Event()

            def pass_on(signum: int, frame: Any) -> None:
                stopping.set()
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
                if stopping.is_set():  # SIGTERM came while it was being started
                    child[0].send_signal(signal.SIGTERM)
                try:
                    code = child[0].wait()
                except BaseException:  # Ctrl-C: at once, the child with it
                    child[0].kill()
                    raise
                worker_exited(child[0].pid)  # METRICS: its counts kept, its files folded
                if stopping.is_set():
                    return 0 if code == 3 else code
                if code != 3:  # 3: a file changed, start again
                    return code

        def __enter__(self) -> Any:
            """The child, before its server starts: SIGTERM drains, then exits 0."""
            requests = track_requests(server)

            def drain_and_exit(signum: int, frame: Any) -> None:
                if lifecycle.shutting_down():
                    return  # sent twice (to the process group, and passed on by the parent)
                lifecycle.begin_shutdown()
                stop_accepting(server)  # the parent has closed its copy: refused from here on
                drain(requests, graceful_timeout)
                sys.exit(0)

            signal.signal(signal.SIGTERM, drain_and_exit)
            return super().__enter__()

    return DrainingReloader
