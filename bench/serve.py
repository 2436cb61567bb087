"""Serve one of bench.apps through one of our launchers, with the shipped settings.

    python -m bench.serve LAUNCHER flask|wsgi

The settings are read exactly as ``python main.py`` reads them (environment,
defaults), so the server and its configuration are ours and only the app
differs: the comparison isolates the app's own cost.
"""

from __future__ import annotations

import sys

from launchers import registry
from launchers.cli import exit_on_startup_error
from launchers.settings import load_settings


def main(argv: list[str]) -> int:
    launcher, app_name = argv
    from bench import apps

    app = {"flask": apps.flask_app, "wsgi": apps.wsgi_app}[app_name]
    with exit_on_startup_error():
        settings = load_settings(flags={"launcher": launcher})
        serve = registry.load(settings.launcher, settings.platform)
        serve(settings, app=app)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
