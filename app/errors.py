"""Every error becomes a response: JSON under /api/, HTML elsewhere.

No traceback ever reaches a client. A request body that cannot be read (a
malformed chunk size, a dropped connection) is the client's fault, so it gets
400, not the 500 that gunicorn's parser error would otherwise become
(app.limits.RequestBody).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger("app.errors")


def wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def render_error(error: HTTPException):
    code = error.code or 500
    description = error.description or ""
    if wants_json():
        response = jsonify(error=error.name, message=description, status=code)
    else:
        response = render_template(
            "error.html",
            code=code,
            name=error.name,
            description=description,
            # No URLs can be built for a Host the app does not serve (TRUSTED_HOSTS):
            # that page goes without its stylesheet.
            styled=request_ctx.url_adapter is not None,
        )
    return response, code, _extra_headers(error)


def _extra_headers(error: HTTPException) -> list[tuple[str, str]]:
    # e.g. Allow on 405, Retry-After on 503
    return [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]


def handle_unexpected(error: Exception):
    if current_app.debug:
        raise error  # let the Werkzeug debugger show it (development only)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(InternalServerError())


def error_response(app: Flask, error: HTTPException, environ: dict) -> Response:
    """The app's own answer to an error found before routing (a request head over the
    limits, a debugger URL), rendered as every other error is."""
    with app.request_context(environ):
        return app.make_response(app.handle_user_exception(error))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, handle_unexpected)
