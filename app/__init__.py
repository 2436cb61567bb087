"""The Flask application: ``from app import create_app``."""

from __future__ import annotations

from flask import Flask

from app.config import TestConfig, configure
from app.errors import register_error_handlers
from app.lifecycle import register_lifecycle
from app.limits import register_body_limit
from app.logs import register_access_log
from app.proxy import register_proxy_fix
from app.security import register_security
from app.views import register_blueprints


def create_app(test_config: TestConfig = None) -> Flask:
    """Build the app: from the environment and ``.env`` without an argument; from the
    ``Settings`` or the test configuration given, reading nothing else (app/config.py).
    """
    app = Flask(__name__)
    configure(app, test_config)
    register_body_limit(app)
    register_access_log(app)
    register_security(app)
    register_lifecycle(app)
    register_proxy_fix(app)
    register_blueprints(app)
    register_error_handlers(app)
    return app
