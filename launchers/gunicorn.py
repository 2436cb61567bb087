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
import signal
from collections.abc import Callable
from typing import Any

from launchers.settings import Settings

log = logging.getLogger("launchers.gunicorn")
SHM = "/dev/shm"  # noqa: S108 - gunicorn's heartbeat files, private to each worker


def options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings (names as in gunicorn's config file) from our settings."""
    worker_class = settings.worker_class
    return {
        "bind": [_bind_address(settings.host, settings.port)],
        "workers": settings.workers,
        "worker_class": worker_class,
        "threads": settings.threads if worker_class == "gthread" else 1,
        "worker_connections": settings.worker_connections,
        "timeout": int(settings.request_timeout),
        "graceful_timeout": int(settings.graceful_timeout) or 1,
        "keepalive": int(settings.keepalive) or 1,
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests // 10 if settings.max_requests else 0,
        # Request limits: the request line (414 above), header count and size (431).
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        # Forwarded headers: trusted exactly as ProxyFix trusts them (TRUSTED_PROXY_HOPS).
        # gunicorn's own default trusts 127.0.0.1, which would let any local client
        # claim https when nothing is meant to be trusted.
        "forwarded_allow_ips": "*" if settings.proxy_hops else "",
        # The app writes the access log (one format for every launcher).
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level,
        # gunicorn >= 25.1 opens a control socket under $HOME by default; a service user
        # whose home is missing or read-only then logs permission errors at every start.
        "control_socket_disable": True,
        # /tmp may be a slow disk; the heartbeat file belongs in memory where there is one.
        "worker_tmp_dir": SHM if _is_dir(SHM) else None,
        "proc_name": "flask-app",
        "on_starting": _on_starting(settings),
        "post_worker_init": post_worker_init,
    }


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_dir(path: str) -> bool:
    import os

    return os.path.isdir(path) and os.access(path, os.W_OK)


def _on_starting(settings: Settings) -> Callable[[Any], None]:
    def on_starting(server: Any) -> None:
        """Before gunicorn binds: our port check and notices, once per master start."""
        from launchers import ports

        ports.check_bind(settings.host, settings.port)
        for notice in settings.notices:
            server.log.warning(notice)

    return on_starting


def post_worker_init(worker: Any) -> None:
    """Make /readyz answer 503 as soon as this worker is told to stop."""
    from app import lifecycle

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        lifecycle.begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def serve(settings: Settings, *, app: Callable | None = None) -> None:
    from gunicorn.app.base import BaseApplication

    class Embedded(BaseApplication):
        def load_config(self) -> None:
            for key, value in options(settings).items():
                # launchers.run() has already checked the port and written the notices;
                # on_starting is for `gunicorn -c gunicorn_config.py`, where nothing has.
                if value is not None and key != "on_starting":
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            if app is not None:
                return app
            from app import create_app

            return create_app(settings.flask_config())

    Embedded().run()
