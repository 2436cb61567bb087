"""Launchers: one module per server, a registry naming them, the shared settings.

``run(settings)`` is what ``python main.py`` calls: it checks that the start
can succeed (port rights, port free), writes the settings' notices, and hands
over to the chosen launcher's ``serve(settings)``. Everything here raises
``launchers.errors.StartupError``; only ``main.py`` prints and exits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from launchers.settings import Settings

log = logging.getLogger("launchers")


def run(settings: Settings, *, serve: Callable[[Settings], None] | None = None) -> None:
    from launchers import ports, registry

    serve = serve or registry.load(settings.launcher, settings.platform)
    ports.check_bind(settings.host, settings.port)
    for notice in settings.notices:
        log.warning(notice)
    serve(settings)
