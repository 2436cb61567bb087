"""The launchers: name -> ``"module:callable"``, imported only when chosen (uvicorn's idiom).

A server that is not installed, or gunicorn on Windows (it needs fcntl), is
never imported unless it is the one asked for. To add a launcher, write a
module with a ``serve(settings, *, app=None)`` function and add one entry here:
``APP_LAUNCHER``'s accepted values, ``--help``, the README's launcher table and
the tests that run every launcher all follow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Launcher:
    target: str  # "module:callable", the serve function
    server: str  # what it is, for the docs
    stop: str  # what SIGTERM does, for the docs
    package: str  # the distribution to install when it is missing
    requirements: str = "requirements.txt"  # the file that pins it
    server_software: str = ""  # how the server names itself in the WSGI environ; default: name
    auto: str = ""  # when APP_LAUNCHER=auto picks it: a key of AUTO_WHEN
    posix_only: bool = False


LAUNCHERS: dict[str, Launcher] = {
    "dev": Launcher(
        "launchers.dev:serve",
        "Werkzeug's development server (reloader and debugger when `FLASK_DEBUG` is on)",
        "yes, the reloader's child too",
        "werkzeug",
        server_software="werkzeug",
        auto="development",
    ),
    "gunicorn": Launcher(
        "launchers.gunicorn:serve",
        "gunicorn, gevent workers, configured by `gunicorn_config.py`",
        "yes (gunicorn's own)",
        "gunicorn",
        auto="production",
        posix_only=True,
    ),
    "waitress": Launcher(
        "launchers.waitress:serve",
        "waitress, threads",
        "yes (our event loop around waitress)",
        "waitress",
        auto="windows",
    ),
    "granian": Launcher(
        "launchers.granian:serve",
        "granian, the Rust HTTP server, through WSGI, behind a proxy that re-frames requests (nginx)",
        "yes (granian's own, workers killed after `GRACEFUL_TIMEOUT`)",
        "granian",
        requirements="requirements-granian.txt",
    ),
}

AUTO_WHEN = {
    "development": "APP_ENV=development or testing",
    "production": "production on Linux and macOS",
    "windows": "production on Windows, where gunicorn cannot run",
}


def is_windows(platform: str) -> bool:
    return platform.startswith("win")


def resolve_auto(env: str, platform: str) -> tuple[str, str]:
    """The launcher ``APP_LAUNCHER=auto`` means, and why."""
    key = (
        "development"
        if env != "production"
        else "windows"
        if is_windows(platform)
        else "production"
    )
    name = next(n for n, spec in LAUNCHERS.items() if spec.auto == key)
    return name, AUTO_WHEN[key] if key != "development" else f"APP_ENV={env}"


def launcher_for_server_software(server_software: str) -> str | None:
    """Which launcher a request came through, from the WSGI ``SERVER_SOFTWARE``."""
    lowered = server_software.lower()
    for name, spec in LAUNCHERS.items():
        if lowered.startswith(spec.server_software or name):
            return name
    return None
