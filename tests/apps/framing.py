"""The real app, wrapped to append how each request reached it, as one JSON line, to $RECORD_FILE.

What a server (or the proxy before it) framed: the request line's version, and
the Transfer-Encoding and Content-Length the app was handed.
"""

from __future__ import annotations

import json
import os

from app import create_app

flask_app = create_app()


def app(environ, start_response):
    record = {
        "request": f"{environ.get('REQUEST_METHOD', '-')} {environ.get('PATH_INFO', '-')}",
        "protocol": environ.get("SERVER_PROTOCOL"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        "content_length": environ.get("CONTENT_LENGTH"),
    }
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)
    return flask_app(environ, start_response)
