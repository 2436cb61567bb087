"""Serve a tests-only WSGI app with a real launcher, exactly as ``python main.py`` would.

    python -m tests.apps.serve tests.apps.recording:app

The settings come from the environment (APP_LAUNCHER, PORT, ...), the launcher
is the production one, only the app differs: that is how the tests see what
reaches the app (a smuggled request) or make a request hang.
"""

from __future__ import annotations

import importlib
import signal
import sys
from functools import partial

from app.logs import configure_logging
from launchers import registry, run
from launchers.cli import exit_on_startup_error
from launchers.settings import load_settings


def main(target: str) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    module_name, _, attr = target.partition(":")
    with exit_on_startup_error():
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        app = getattr(importlib.import_module(module_name), attr)
        serve = registry.load(settings.launcher, settings.platform)
        try:
            run(settings, serve=partial(serve, app=app))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
