"""The real app, wrapped to append "METHOD PATH" for every request it sees to $RECORD_FILE.

A smuggled request hidden in a malformed one would show up here by its path.
One ``os.write`` per line on an O_APPEND file: whole lines, even from several workers.
"""

from __future__ import annotations

import os

from app import create_app

flask_app = create_app()


def app(environ, start_response):
    line = f"{environ.get('REQUEST_METHOD', '-')} {environ.get('PATH_INFO', '-')}\n"
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("latin-1", "replace"))
    finally:
        os.close(fd)
    return flask_app(environ, start_response)
