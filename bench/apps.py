"""The reference apps the bench compares ours against.

``flask_app``: a bare Flask hello with the same route and body as our
``/healthz`` (``jsonify(status="ok")``) and nothing else: no security headers,
request id, access log, proxy fix, error handlers or SECRET_KEY. Ours against it,
under the same server and settings, is the cost of everything the starter adds.

``flask_app_with_sessions``: the same with a SECRET_KEY, as any Flask app that
signs a session has: Flask then opens a signed-cookie session on every request
(in process only, for what that alone costs).

``wsgi_app``: a raw WSGI hello, no Flask at all: the ceiling a server reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask, jsonify


def hello_app(secret_key: str | None = None) -> Flask:
    app = Flask(__name__)
    app.secret_key = secret_key

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


flask_app = hello_app()
flask_app_with_sessions = hello_app("bench-only-secret-key-0123456789abcdef")

BODY = b'{"status":"ok"}\n'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def wsgi_app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
