"""The WSGI entry point for any server: ``wsgi:app``.

gunicorn -c gunicorn_config.py wsgi:app
waitress-serve --port=5000 wsgi:app
"""

from app import create_app
from launchers.cli import exit_on_startup_error

with exit_on_startup_error():
    app = create_app()
