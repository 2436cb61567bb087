"""Security headers, request ids and session cookie rules for every response.

The headers and the request id are added by the app's WSGI layer (app/middleware.py)
to every response the app writes, its errors included.
"""

from __future__ import annotations

import re
from random import getrandbits
from typing import Any

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID_KEY = "app.request_id"  # where the WSGI environ keeps this request's id
REQUEST_ID_HEADER = "X-Request-ID"

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

_HEADER_LIST = list(HEADERS.items())
_HSTS_HEADER = ("Strict-Transport-Security", HSTS)
# The headers the app adds as they are to a response (X-Request-ID differs each time).
CONSTANT_HEADERS = (*_HEADER_LIST, _HSTS_HEADER)
_OURS = frozenset(name.lower() for name in (*HEADERS, _HSTS_HEADER[0], REQUEST_ID_HEADER))


def request_id_for(environ: dict[str, Any]) -> str:
    """The incoming X-Request-ID when well formed, else a new one: 32 random hex digits,
    as many as a UUID's.

    From ``random``, not ``os.urandom``: an id is no secret (any client may send its
    own), and urandom's system call lets go of the GIL with every request, which under
    a threaded server costs a wait to get it back. ``random`` reseeds in a forked
    worker, so workers do not repeat each other's ids.
    """
    incoming = environ.get("HTTP_X_REQUEST_ID")
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return getrandbits(128).to_bytes(16).hex()


def request_id() -> str:
    """This request's id, in a view."""
    environ = request.environ
    rid = environ.get(REQUEST_ID_KEY)
    if rid is None:  # a request that did not come through the app's WSGI layer
        rid = environ[REQUEST_ID_KEY] = request_id_for(environ)
    return rid


def add_security_headers(headers: list[tuple[str, str]], https: bool, rid: str) -> None:
    """Our headers, in place: one a view set itself is kept, but X-Request-ID is always
    this request's. HSTS only over HTTPS."""
    for name, _ in headers:
        if name.lower() in _OURS:
            _add_missing_headers(headers, https)
            break
    else:
        headers.extend(_HEADER_LIST)
        if https:
            headers.append(_HSTS_HEADER)
    headers.append((REQUEST_ID_HEADER, rid))


def _add_missing_headers(headers: list[tuple[str, str]], https: bool) -> None:
    """A view set one of our headers: keep its value, add the others."""
    ours = REQUEST_ID_HEADER.lower()
    headers[:] = [(name, value) for name, value in headers if name.lower() != ours]
    present = {name.lower() for name, _ in headers}
    missing = [h for h in CONSTANT_HEADERS if h[0].lower() not in present]
    headers.extend(h for h in missing if https or h is not _HSTS_HEADER)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, their serializer built once and only when needed.

    Flask builds it on every request, whether the session is used or not
    (docs/performance.md has what that cost). Behaviour is Flask's: Vary:
    Cookie once the session is accessed, the cookie written only when the
    session is modified (or permanent and refreshed each request). Cookies are
    HttpOnly and SameSite=Lax always, and Secure over HTTPS.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializers = {key: serializer}  # a new key replaces the old one
        return serializer

    def open_session(self, app: Flask, request: Any) -> SessionMixin | None:
        if not app.secret_key:
            return None
        if "HTTP_COOKIE" not in request.environ or not request.cookies.get(
            self.get_cookie_name(app)
        ):
            return self.session_class()  # no cookie: no serializer needed
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Any) -> None:
        if not (session or session.accessed or session.modified):
            return  # empty and untouched: Flask would do nothing either
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (
            has_request_context() and request.is_secure
        )
