"""The app's configuration: the settings object, and the Flask keys that come from it.

``create_app()`` reads the settings from the environment and ``.env``; given a
``Settings`` it uses that; given a mapping (a test configuration, as in Flask's
tutorial) it reads nothing else: keys that name a setting (``"APP_ENV"``,
``"TRUSTED_PROXY_HOPS"``) are read as that variable would be, any other key is
a Flask config key set last (``"TESTING"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from app.logs import configure_logging
from app.security import SessionInterface
from app.strict_json import StrictJSONProvider
from settings import VARIABLES, Settings, load_settings

TestConfig = Settings | Mapping[str, Any] | None


def _as_text(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def resolve(test_config: TestConfig) -> tuple[Settings, dict[str, Any]]:
    """The settings and the Flask keys to set last."""
    if test_config is None:
        return load_settings(), {}
    if isinstance(test_config, Settings):
        return test_config, {}
    variables = {k: _as_text(v) for k, v in test_config.items() if k in VARIABLES}
    flask_keys = {k: v for k, v in test_config.items() if k not in VARIABLES}
    return load_settings(variables, dotenv_path=None), flask_keys


def configure(app: Flask, test_config: TestConfig) -> None:
    settings, flask_keys = resolve(test_config)
    app.extensions["settings"] = settings
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        DEBUG=settings.debug and settings.launcher == "dev",
        TESTING=settings.env == "testing",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Secure is added per request when the request came over HTTPS (see SessionInterface).
        SESSION_COOKIE_SECURE=False,
        # Requests naming any other Host get a 400; None (no TRUSTED_HOSTS) accepts any.
        TRUSTED_HOSTS=list(settings.trusted_hosts) or None,
    )
    app.config.update(flask_keys)
    app.session_interface = SessionInterface()
    app.json = StrictJSONProvider(app)
    configure_logging(settings.log_level, settings.log_format)


def settings_of(app: Flask | None = None) -> Settings:
    """The settings the app was built with (``current_app``'s by default)."""
    return (app or current_app).extensions["settings"]
