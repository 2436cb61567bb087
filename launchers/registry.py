"""Launcher name -> "module:callable", imported only when chosen.

A server that is not installed, or gunicorn on Windows (it needs fcntl), is
never imported unless it is the one asked for. To add a launcher, add a module
with a ``serve(settings)`` function and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from launchers.errors import LauncherUnavailable


@dataclass(frozen=True)
class LauncherSpec:
    target: str  # "module:callable", the serve function
    server_software: str  # how the server names itself in the WSGI environ
    package: str  # the distribution to install when it is missing
    posix_only: bool = False


LAUNCHERS: dict[str, LauncherSpec] = {
    "dev": LauncherSpec("launchers.dev:serve", "werkzeug", "werkzeug"),
    "gunicorn": LauncherSpec("launchers.gunicorn:serve", "gunicorn", "gunicorn", posix_only=True),
    "waitress": LauncherSpec("launchers.waitress:serve", "waitress", "waitress"),
    # granian names itself "Granian" in SERVER_SOFTWARE.
    "granian": LauncherSpec("launchers.granian:serve", "granian", "granian"),
}


def names() -> tuple[str, ...]:
    return tuple(LAUNCHERS)


def register(name: str, spec: LauncherSpec) -> None:
    LAUNCHERS[name] = spec


def is_windows(platform: str) -> bool:
    return platform.startswith("win")


def resolve_auto(env: str, platform: str) -> tuple[str, str]:
    """The launcher ``APP_LAUNCHER=auto`` means, and why."""
    if env != "production":
        return "dev", f"APP_ENV={env}"
    if is_windows(platform):
        return "waitress", "production on Windows, where gunicorn cannot run"
    return "gunicorn", "production on POSIX"


def load(name: str, platform: str) -> Callable:
    """Import the launcher's serve function, or explain why it cannot run here."""
    spec = LAUNCHERS[name]
    if spec.posix_only and is_windows(platform):
        raise LauncherUnavailable(
            f"APP_LAUNCHER={name} cannot run on Windows: {name} needs POSIX fork and fcntl. "
            "Use APP_LAUNCHER=waitress (or auto, which picks waitress on Windows)."
        )
    module_name, _, attr = spec.target.partition(":")
    try:
        # The server package itself: the launcher modules import it only inside serve().
        importlib.import_module(spec.package.split("[")[0])
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == spec.package.split("[")[0]:
            raise LauncherUnavailable(
                f"APP_LAUNCHER={name} needs the package {spec.package!r}, which is not installed "
                f"in this Python ({exc.name} cannot be imported). Install it with "
                f"python -m pip install {spec.package}, or choose another launcher: "
                f"{', '.join(LAUNCHERS)}."
            ) from None
        raise
    return getattr(module, attr)


def launcher_for_server_software(server_software: str) -> str | None:
    """Which launcher a request came through, from the WSGI ``SERVER_SOFTWARE``."""
    lowered = server_software.lower()
    for name, spec in LAUNCHERS.items():
        if lowered.startswith(spec.server_software):
            return name
    return None
