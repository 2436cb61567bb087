"""The start-time checks of the machine: the launcher can run, the port can be bound.

Each check is one function returning ``Problem``s in the one wording a refused
start and ``python main.py doctor`` share. A start raises the first
(``preflight``, ``load_launcher``); doctor lists them all. The rules across
settings alone (secret, debug, the dev server in production) are
``settings.rules``: they hold for ``create_app()`` too, with no launcher.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path

from launchers import ports
from settings import Settings, registry
from settings.errors import LauncherUnavailable, Problem, raise_first
from settings.replit import REPLIT_FILE, read_replit

log = logging.getLogger("launchers")


def launcher_problems(
    settings: Settings, *, installed: Callable[[str], bool] | None = None
) -> list[Problem]:
    """The chosen launcher cannot run here: gunicorn on Windows, or its package is missing."""
    name, spec = settings.launcher, registry.LAUNCHERS[settings.launcher]
    if spec.posix_only and registry.is_windows(settings.platform):
        return [
            Problem(
                "launcher",
                LauncherUnavailable,
                f"APP_LAUNCHER={name} cannot run on Windows: {name} needs POSIX fork and fcntl.",
                "Use APP_LAUNCHER=waitress (or auto, which picks waitress on Windows).",
            )
        ]
    if not (installed or _installed)(spec.package):
        return [
            Problem(
                "launcher",
                LauncherUnavailable,
                f"APP_LAUNCHER={name} needs the package {spec.package!r}, which is not installed "
                "in this Python.",
                f"Install it with .venv/bin/pip install -r {spec.requirements}, or choose "
                f"another launcher: {', '.join(registry.LAUNCHERS)}.",
            )
        ]
    return []


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:  # a broken install, or one hidden on purpose
        return False


def load_launcher(settings: Settings) -> Callable:
    """The chosen launcher's serve function, imported now, or LauncherUnavailable."""
    raise_first(launcher_problems(settings))
    spec = registry.LAUNCHERS[settings.launcher]
    module, _, attr = spec.target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:  # installed, but broken: a missing native part, a dependency
        raise LauncherUnavailable(
            f"APP_LAUNCHER={settings.launcher} is installed but cannot be imported ({exc}). "
            f"Reinstall it with .venv/bin/pip install --force-reinstall -r {spec.requirements}."
        ) from None


def port_problems(
    settings: Settings,
    *,
    rights: ports.PortRights | None = None,
    try_bind: Callable[[str, int], OSError | None] = ports.try_bind,
) -> list[Problem]:
    """No right to bind the port (decided on Linux, tried elsewhere), or a real bind fails."""
    host, port = settings.host, settings.port
    rights = rights or ports.port_rights(port)
    if not rights.allowed and ports.is_linux(settings.platform):
        return [ports.privileged_port_problem(host, rights)]
    error = try_bind(host, port)
    return [] if error is None else [ports.bind_problem(host, port, error)]


def preflight(settings: Settings) -> None:
    """Before any server starts: refuse with the first problem of the port."""
    raise_first(port_problems(settings))


def prepare(
    settings: Settings, *, rights: ports.PortRights | None = None, replit_file: Path = REPLIT_FILE
) -> Settings:
    """The settings as this machine serves them: in a Replit deployment, the port.

    Replit routes external port 80 to the ``.replit`` localPort and may set PORT=80
    as well; a deployment does not run as root, so it serves on that localPort.
    """
    if not settings.replit_deployment:
        return settings
    internal = read_replit(replit_file).internal_port
    source = settings.source("PORT")
    if source == "default":
        why = "default (the localPort .replit maps to externalPort 80)"
        return settings.replace(port=internal, sources={**settings.sources, "PORT": why})
    if (rights or ports.port_rights(settings.port)).allowed:
        return settings
    notice = (
        f"PORT={settings.port} ignored in this Replit deployment: it is a privileged port this "
        f"process may not bind; serving on {internal}, the localPort .replit maps to externalPort 80."
    )
    why = f"{source}, replaced: {settings.port} is privileged here; .replit maps {internal} to 80"
    return settings.replace(
        port=internal,
        sources={**settings.sources, "PORT": why},
        notices=(*settings.notices, notice),
    )


def reloader_child() -> bool:
    """The process Werkzeug's reloader restarts on each change.

    Its parent has already bound the socket and passes it down, so a pre-flight
    bind here would find the port "in use" by our own parent.
    """
    return os.environ.get("WERKZEUG_RUN_MAIN") == "true"
