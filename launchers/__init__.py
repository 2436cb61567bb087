"""Launchers: one module per server, each with ``serve(settings, *, app=None)``.

``run(settings)`` is what ``python main.py`` calls: it makes the start-time
checks (``launchers.checks``), writes the settings' notices, and hands over to
the chosen launcher, imported by its ``"module:callable"`` in
``settings.registry``. Everything here raises ``settings.errors.StartupError``;
only the command line (``launchers.cli``) prints and exits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.logs import configure_logging
from launchers import checks, metrics
from settings import Settings

log = logging.getLogger("launchers")


def run(settings: Settings, *, app: Callable | None = None) -> None:
    """Check that the start can succeed, then serve ``app`` (by default the project's)."""
    configure_logging(settings.log_level, settings.log_format)
    serve = checks.load_launcher(settings)
    if not checks.reloader_child():
        checks.preflight(settings)
        for notice in settings.notices:
            log.warning(notice)
        metrics.prepare(settings)  # before any worker imports prometheus_client
    serve(settings, app=app)
