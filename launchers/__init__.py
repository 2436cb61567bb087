"""Launchers: one module per server, a registry naming them, the shared settings.

``run(settings)`` is what ``python main.py`` calls: it checks that the start
can succeed (port rights, port free), writes the settings' notices, and hands
over to the chosen launcher's ``serve(settings)``. Everything here raises
``launchers.errors.StartupError``; only ``main.py`` prints and exits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from launchers.settings import Settings

log = logging.getLogger("launchers")


def run(settings: Settings, *, serve: Callable[[Settings], None] | None = None) -> None:
    from launchers import ports, registry

    serve = serve or registry.load(settings.launcher, settings.platform)
    if not reloader_child():
        ports.check_bind(settings.host, settings.port)
        for notice in settings.notices:
            log.warning(notice)
    serve(settings)


def reloader_child() -> bool:
    """The process Werkzeug's reloader restarts on each change.

    Its parent has already bound the socket and passes it down, so a pre-flight
    bind here would find the port "in use" by our own parent.
    """
    return os.environ.get("WERKZEUG_RUN_MAIN") == "true"
