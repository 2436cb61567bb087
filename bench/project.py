"""The one door from the bench into the project (app, launchers, settings).

Nothing else in bench/ imports the project's code, so that a change of its API
is adapted here alone. The imports sit inside the functions so that the bench's
own process loads the project only when it needs it (``--help``, the missing-wrk
message and ``--render-only`` never do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def starter_app(environ: Mapping[str, str]) -> Callable:
    """The starter's WSGI app, built from exactly these variables (no .env, no os.environ)."""
    from app import create_app

    return create_app(dict(environ))


def variables() -> set[str]:
    """Every environment variable the project reads: what a spawned server must not inherit."""
    from settings import VARIABLES

    return set(VARIABLES)


def usable_cpus() -> int:
    """The CPUs this process may keep busy (affinity and cgroup quota), as the launchers count."""
    from settings.cpus import usable_cpus as count

    return count()


def serve(launcher_name: str, wsgi_app: Callable) -> None:
    """Serve ``wsgi_app`` with that launcher and the settings from the environment.

    The settings are read as ``python main.py`` reads them, so the server and its
    configuration are the starter's and only the app differs. A bad start exits
    with the project's one-paragraph message and exit code.
    """
    from launchers import cli, run
    from settings import load_settings

    with cli.exit_on_startup_error():
        run(load_settings(flags={"launcher": launcher_name}), app=wsgi_app)
