"""The Flask application: ``from app import create_app``."""

from __future__ import annotations

from flask import Flask

from app.config import TestConfig, configure
from app.errors import register_error_handlers
from app.middleware import register_middleware
from app.proxy import register_proxy_fix
from app.views import register_blueprints


def register_metrics(app: Flask) -> None:
    """METRICS on: /metrics and what each request records (app/metrics.py). Off, the
    module, and prometheus_client with it, is never imported."""
    if app.extensions["settings"].metrics:
        from app.metrics import register_metrics as register

        register(app)


def create_app(test_config: TestConfig = None) -> Flask:
    """Build the app: from the environment and ``.env`` without an argument; from the
    ``Settings`` or the test configuration given, reading nothing else (app/config.py).
    """
    app = Flask(__name__)
    configure(app, test_config)
    register_blueprints(app)
    register_error_handlers(app)
    register_metrics(app)  # before the middleware, which picks it up
    register_middleware(app)
    register_proxy_fix(app)  # outside the middleware, which sees the request after it
    return app
