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

from launchers import run
from launchers.cli import exit_on_startup_error
from settings import load_settings


def main(target: str) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    module_name, _, attr = target.partition(":")
    with exit_on_startup_error():
        settings = load_settings()
        app = getattr(importlib.import_module(module_name), attr)
        try:
            run(settings, app=app)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
