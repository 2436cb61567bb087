"""The two reference apps the bench compares ours against.

``flask_app``: a bare Flask hello with the same route and body as our
``/healthz`` (``jsonify(status="ok")``) and nothing else: no security headers,
request id, access log, proxy fix or error handlers. Ours against it, under the
same server and settings, is the cost of our middleware.

``wsgi_app``: a raw WSGI hello, no Flask at all: the ceiling a server reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask, jsonify

flask_app = Flask(__name__)


@flask_app.get("/healthz")
def healthz():
    return jsonify(status="ok")


BODY = b'{"status":"ok"}\n'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def wsgi_app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
