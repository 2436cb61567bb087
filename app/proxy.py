"""Proxy headers, trusted only as far as TRUSTED_PROXY_HOPS says.

With 0 (the default) X-Forwarded-* are ignored: anyone can send them. With N,
werkzeug's ProxyFix takes the N-th value from the right of each header, the
one the nearest trusted proxy appended, so a client cannot forge its address
by sending its own X-Forwarded-For.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import settings_of


def register_proxy_fix(app: Flask) -> None:
    hops = settings_of(app).proxy_hops
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
