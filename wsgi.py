"""The WSGI entry point for any server: ``wsgi:app``.

    gunicorn -c gunicorn_config.py wsgi:app

Prefer ``python main.py`` to a server's own command: it adds the checks, the
graceful stop and (for waitress) the strict request parser.
"""

from app import create_app
from launchers.cli import exit_on_startup_error

with exit_on_startup_error():
    app = create_app()
