"""``python -m bench.serve LAUNCHER flask|wsgi``: one of bench.apps under one of our launchers.

The launcher and its settings are the starter's (bench.project.serve), only the
app differs: the starter's req/s against these isolate what its own code costs.
"""

from __future__ import annotations

import sys

from bench import apps, project

APPS = {"flask": apps.flask_app, "wsgi": apps.wsgi_app}

if __name__ == "__main__":
    launcher_name, app_name = sys.argv[1:]
    project.serve(launcher_name, APPS[app_name])
