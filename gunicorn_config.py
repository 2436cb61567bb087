"""gunicorn's settings, from the same settings object every launcher uses.

    gunicorn -c gunicorn_config.py wsgi:app

gunicorn reads ./gunicorn.conf.py on its own, but not this file: always pass
``-c gunicorn_config.py`` (flask_deploy.sh, the Procfile, the Dockerfile and
the systemd unit all do). Change behaviour with the environment variables in
.env.example, not here: ``python main.py config`` shows what they resolve to.
"""

import os

from launchers import checks
from launchers.cli import exit_on_startup_error
from launchers.gunicorn import options
from settings import load_settings

with exit_on_startup_error():
    # This file is only read by gunicorn, so gunicorn is the launcher whatever
    # APP_LAUNCHER says (a malformed one is still refused); the workers, which
    # import wsgi:app, inherit that.
    load_settings(check=False)
    os.environ["APP_LAUNCHER"] = "gunicorn"
    settings = checks.prepare(load_settings())

_options = options(settings)
_check_before_binding = _options.pop("on_starting")


def on_starting(server):
    with exit_on_startup_error():
        _check_before_binding(server)


globals().update(_options)
