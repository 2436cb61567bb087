"""The Flask application: ``from app import create_app``.

``create_app`` imports the app's modules when it is called, not when this package
is imported. A server's master process imports a few of them (app.logs, app.limits,
app.metrics_files; granian's also app.security and app.lifecycle) and every worker it
forks inherits what the master has imported: left to the workers, the views,
templates and error pages are read from disk by each new one, so a reload (SIGHUP)
serves the code now on disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.config import TestConfig


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
    from flask import Flask

    from app.config import configure
    from app.errors import register_error_handlers
    from app.middleware import register_middleware
    from app.proxy import register_proxy_fix
    from app.views import register_blueprints

    app = Flask(__name__)
    configure(app, test_config)
    register_blueprints(app)
    register_error_handlers(app)
    register_metrics(app)  # before the middleware, which picks it up
    register_middleware(app)
    register_proxy_fix(app)  # outside the middleware, which sees the request after it
    return app
