"""Every error becomes a response: JSON under /api/, HTML elsewhere.

No traceback ever reaches a client. A request body that cannot be read (a
malformed chunk size, a dropped connection) is the client's fault, so it gets
400, not the 500 that gunicorn's parser error would otherwise become.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

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
            "error.html", code=code, name=error.name, description=description
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


class GuardedInput:
    """wsgi.input whose read errors are a 400 for the client, not a 500."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, method: Callable, *args: Any) -> Any:
        try:
            return method(*args)
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - the server's parser: bad chunk size, truncated body, ...
            raise BadRequest(
                f"The request body could not be read ({type(exc).__name__})."
            ) from None

    def read(self, *args: Any) -> bytes:
        return self._guard(self._stream.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._guard(self._stream.readline, *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._guard(self._stream.readlines, *args)

    def __iter__(self) -> Iterable[bytes]:
        return iter(self.readline, b"")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, handle_unexpected)
    inner = app.wsgi_app

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = GuardedInput(environ["wsgi.input"])
        return inner(environ, start_response)

    app.wsgi_app = guarded  # type: ignore[method-assign]
