"""Flask configuration, from the launchers' settings object plus overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from app.logs import configure_logging
from app.security import SessionInterface


def configure(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    overrides = dict(overrides or {})
    if "SETTINGS" not in overrides:
        from launchers.settings import load_settings

        overrides = {**load_settings().flask_config(), **overrides}
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Secure is added per request when the request came over HTTPS (see SessionInterface).
        SESSION_COOKIE_SECURE=False,
    )
    app.config.update(overrides)
    app.session_interface = SessionInterface()
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
