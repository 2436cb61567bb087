"""Security headers, request ids and session cookie rules for every response."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The index page uses only its own stylesheet: no inline script or style is allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


def request_id() -> str:
    """The incoming X-Request-ID when well formed, else a new one (a UUID)."""
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    return g.request_id


def _add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    response.headers["X-Request-ID"] = request_id()
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Session cookies are HttpOnly and SameSite=Lax always, and Secure over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure
        )


def _assign_request_id() -> None:
    request_id()


def _no_debugger_urls() -> None:
    """Without the debugger, its URLs (``?__debugger__=yes&cmd=...``) are plain 404s.

    The debugger is only ever wrapped around the app by the dev launcher with
    FLASK_DEBUG on (refused in production); answering its URLs with the page
    they were appended to would still tell a scanner it had found a Flask app.
    """
    if "__debugger__" in request.args and not current_app.debug:
        abort(404)


def register_security(app: Flask) -> None:
    app.before_request(_assign_request_id)
    app.before_request(_no_debugger_urls)
    app.after_request(_add_headers)
