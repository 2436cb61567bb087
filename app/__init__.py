"""The Flask application: ``from app import create_app``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from app.config import configure
from app.errors import register_error_handlers
from app.lifecycle import register_lifecycle
from app.limits import register_body_limit
from app.logs import register_access_log
from app.proxy import register_proxy_fix
from app.security import register_security
from app.views import register_blueprints


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``overrides`` are Flask config keys applied last (tests use them).

    Without ``overrides["SETTINGS"]`` the settings are read from the environment.
    """
    app = Flask(__name__)
    configure(app, overrides)
    register_body_limit(app)
    register_access_log(app)
    register_security(app)
    register_lifecycle(app)
    register_proxy_fix(app)
    register_blueprints(app)
    register_error_handlers(app)
    return app
