"""gunicorn: the production server on POSIX.

``options(settings)`` is the single source of gunicorn's configuration: the
top-level ``gunicorn_config.py`` (used by ``gunicorn -c gunicorn_config.py
wsgi:app``, ``flask_deploy.sh``, the Procfile, Docker and systemd) and this
launcher both take their values from it.

Why embed gunicorn (``BaseApplication``) instead of exec'ing the gunicorn
command: the settings were already read and checked once, flags included, and
are handed over as Python values instead of being round-tripped through the
environment and re-validated; errors before binding stay ours (one paragraph,
no gunicorn retry loop); and the process stays the one the platform started,
so SIGTERM reaches gunicorn's master directly, as an ``exec`` would ensure.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from app import limits as request_limits
from launchers import checks, limits, listener, metrics
from launchers.gevent_start import patch_with_entry_points_read_once
from launchers.gunicorn_headers import patch_response_headers
from launchers.gunicorn_parser import leave_head_limits_to_gunicorn
from settings import Settings

# gunicorn, gevent and the app are imported inside the hooks that run in a worker: this
# module is also read by gunicorn's master (gunicorn_config.py), before gevent patches.

log = logging.getLogger("launchers.gunicorn")
SHM = "/dev/shm"  # noqa: S108 - gunicorn's heartbeat files, private to each worker


def options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings (names as in gunicorn's config file) from our settings."""
    worker_class = settings.worker_class
    return {
        "bind": [_bind_address(settings.host, settings.port)],
        # One gevent worker per usable CPU (settings): more compete for the same cores.
        "workers": settings.workers,
        "worker_class": worker_class,
        "threads": settings.threads if worker_class == "gthread" else 1,
        "worker_connections": settings.worker_connections,
        # gevent: after each response, let the other connections' requests run first
        # (post_request below; the p99 it saves is in docs/performance.md).
        "post_request": post_request,
        # Off, gunicorn's default: preloading started no sooner, and each worker then
        # builds its app after gevent's patching.
        "preload_app": False,
        # At least 1: gunicorn reads 0 as "no timeout at all".
        "timeout": max(1, int(settings.request_timeout)),
        "graceful_timeout": int(settings.graceful_timeout) or 1,
        "keepalive": int(settings.keepalive) or 1,
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests // 10 if settings.max_requests else 0,
        # Request limits: the request line (414 above), header count and size (431).
        "limit_request_line": request_limits.REQUEST_LINE_BYTES,
        "limit_request_fields": request_limits.HEADER_FIELDS,
        "limit_request_field_size": request_limits.HEADER_LINE_BYTES,
        # Forwarded headers: trusted exactly as ProxyFix trusts them (TRUSTED_PROXY_HOPS).
        # gunicorn's own default trusts 127.0.0.1, which would let any local client
        # claim https when nothing is meant to be trusted.
        "forwarded_allow_ips": "*" if settings.proxy_hops else "",
        # ...and only the header ProxyFix reads. gunicorn's defaults would also take
        # X-Forwarded-Ssl / X-Forwarded-Protocol as https, and a client's SCRIPT_NAME or
        # PATH_INFO header as the environ's (a 500 when the path does not match).
        "secure_scheme_headers": {"X-FORWARDED-PROTO": "https"},
        "forwarder_headers": "",
        # The app writes the access log (one format for every launcher).
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level,
        # gunicorn's own lines in our format (LOG_FORMAT=json included), each written once.
        "logger_class": logger_class(settings.log_format),
        # gunicorn >= 25.1 opens a control socket under $HOME by default; a service user
        # whose home is missing or read-only then logs permission errors at every start.
        "control_socket_disable": True,
        # /tmp may be a slow disk; the heartbeat file belongs in memory where there is one.
        "worker_tmp_dir": SHM if _is_dir(SHM) else None,
        "proc_name": "flask-app",
        "on_starting": _on_starting(settings),
        "when_ready": when_ready,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "worker_abort": worker_abort,
        "child_exit": metrics.child_exit,  # METRICS: an exited worker's counts kept
    }


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK)


def _on_starting(settings: Settings) -> Callable[[Any], None]:
    def on_starting(server: Any) -> None:
        """Before gunicorn binds: our port check and notices, once per master start."""
        checks.preflight(settings)
        for notice in settings.notices:
            server.log.warning(notice)
        metrics.prepare(settings)  # once per master start: a reload (HUP) keeps the counts

    return on_starting


def when_ready(server: Any) -> None:
    """In the master, once it listens: a graceful stop first empties the listen queue.

    gunicorn's master closes its listeners, then tells the workers to stop; the workers
    close their copies, and the connections still queued were reset (a POST behind nginx
    then failed with 502). Before that now, new connections are turned away and the
    workers, still running, accept what is queued (launchers/listener.py). A reload (HUP)
    or a recycled worker never closes the listener, so it needs none of this.
    """
    stop = server.stop

    def stop_without_resets(graceful: bool = True) -> None:
        if graceful and server.LISTENERS and listeners_close_with(server):
            started = time.monotonic()
            for sock in server.LISTENERS:
                listener.stop_queueing(sock)
            emptied = all([listener.wait_until_drained(sock) for sock in server.LISTENERS])
            server.log.info(
                "Listen queue %s in %.0f ms; stopping the workers",
                "emptied" if emptied else "still holds connections",
                (time.monotonic() - started) * 1000,
            )
        stop(graceful)

    server.stop = stop_without_resets


def listeners_close_with(server: Any) -> bool:
    """Whether the listening sockets end with this master, gunicorn's own test for unlinking
    them. Not after a binary upgrade (USR2: the new master shares them), under systemd's
    socket activation (systemd keeps them) or with reuse_port: the filter belongs to the
    socket, so it would turn away every connection the survivor should take."""
    sole = server.reexec_pid == server.master_pid == 0
    return sole and not server.systemd and not server.cfg.reuse_port


def logger_class(log_format: str) -> type:
    """gunicorn's logger, its lines (gunicorn.error) formatted like the app's.

    gunicorn keeps its own handler on gunicorn.error and does not propagate to
    the root logger, where the app's handlers are: each line is written once.
    Its access log stays off (``accesslog`` None): the app writes that one.
    """
    from gunicorn.glogging import Logger

    from app.logs import make_formatter

    class AppFormatLogger(Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(make_formatter(log_format))

    return AppFormatLogger


# Signals the master sends a worker to stop it. Between fork and gunicorn's init_signals
# (which, for gevent, comes after monkey-patching: about 0.1 s) a worker still runs the
# master's handler, which only queues the signal for a loop the worker never runs: a
# SIGTERM then is lost, the worker keeps accepting, and the master SIGKILLs it after
# GRACEFUL_TIMEOUT with whatever it is serving. Held (blocked) from just after fork
# until the worker's handlers are in place, the signal stays pending and reaches them.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def post_fork(server: Any, worker: Any) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    patch_with_entry_points_read_once(worker)  # gevent's patching, 0.2 s sooner
    # A stop signal that came even sooner, between fork and this hook, went to the
    # master's handler, which put it on this process's copy of the master's queue:
    # honour it (the worker then starts, finds itself stopped, and exits cleanly).
    while True:
        try:
            if server.SIG_QUEUE.get_nowait() in STOP_SIGNALS:
                worker.alive = False
        except (queue.Empty, AttributeError):
            return


def post_request(worker: Any, req: Any) -> None:
    """Hand a gevent worker to the other waiting connections after each response.

    A gevent worker goes on serving a keep-alive connection for as long as its
    client has the next request ready, so under load a few connections are
    answered back to back while the others wait (a long p99 tail).
    ``gevent.idle()`` waits until the loop has served every other
    connection that is ready: round-robin. ``gevent.sleep(0)`` is not enough: it
    resumes this greenlet before the loop polls again.
    """
    if worker.cfg.worker_class_str == "gevent":
        import gevent

        gevent.idle()


def post_worker_init(worker: Any) -> None:
    """In each worker: /readyz answers 503 once it is told to stop; 400 for an unknown
    Transfer-Encoding; the app's headers as launchers/gunicorn_headers.py says; room
    for WORKER_CONNECTIONS open files."""
    from app import lifecycle

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        lifecycle.begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    # Ctrl-C in a terminal sends SIGINT to the whole process group. The master
    # answers it by telling each worker to quit; a worker that also handles the
    # SIGINT itself exits twice, and gevent prints a SystemExit traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _unknown_transfer_coding_is_400(worker)
    patch_response_headers()
    leave_head_limits_to_gunicorn(worker)
    limits.ensure_open_files(worker.cfg.worker_connections)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held since post_fork


def _unknown_transfer_coding_is_400(worker: Any) -> None:
    """gunicorn answers an unknown Transfer-Encoding (``xchunked``, ``,chunked``) with 501.

    RFC 9112 allows that, but it is the client's malformed request, and nothing a
    client sends should get a 5xx (a 5xx means our fault, and pages someone): answer 400, as gunicorn does for every other framing error.
    """
    from gunicorn.http.errors import InvalidHeader, UnsupportedTransferCoding

    handle_error = worker.handle_error

    def handle(req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, UnsupportedTransferCoding):
            exc = InvalidHeader("TRANSFER-ENCODING")
        handle_error(req, client, addr, exc)

    worker.handle_error = handle


def worker_abort(worker: Any) -> None:
    """gunicorn killed this worker for a timeout (REQUEST_TIMEOUT): say which requests hung."""
    from app import lifecycle

    hung = lifecycle.requests_in_flight()
    worker.log.critical(
        "worker %s killed by the worker timeout (REQUEST_TIMEOUT=%ss); request(s) in flight: %s",
        worker.pid,
        worker.cfg.timeout,
        "; ".join(hung) or "none",
    )


def serve(settings: Settings, *, app: Callable | None = None) -> None:
    from gunicorn.app.base import BaseApplication

    class Embedded(BaseApplication):
        def load_config(self) -> None:
            for key, value in options(settings).items():
                # launchers.run has already checked the port and written the notices;
                # on_starting is for `gunicorn -c gunicorn_config.py`, where nothing has.
                if value is not None and key != "on_starting":
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            if app is not None:
                return app
            from app import create_app

            return create_app(settings)

    Embedded().run()
