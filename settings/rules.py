"""The rules across settings: what a start refuses even when every value is well formed.

Each rule is written once, as a ``Problem`` (what is wrong and why, then the
fix): a start raises the first one (``validate``), ``python main.py doctor``
lists them all.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from settings.errors import ConfigError, Problem, raise_first

if TYPE_CHECKING:
    from settings import Settings

DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 16
KEYGEN_COMMAND = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _problem(check: str, text: str, fix: str) -> Problem:
    return Problem(check, ConfigError, text, fix)


def secret_problems(settings: Settings) -> list[Problem]:
    if not settings.production:
        return []
    store = (
        f"Generate one with\n    {KEYGEN_COMMAND}\nand set it in the platform's secrets "
        "(Replit: Secrets tab; Heroku: config vars; systemd: the EnvironmentFile), never in "
        "the repository."
    )
    if not settings.secret_key:
        return [
            _problem(
                "secrets",
                "APP_ENV=production needs SECRET_KEY, and it is not set. Sessions and signed "
                "cookies would be forgeable with a known key.",
                store,
            )
        ]
    if len(settings.secret_key) < MIN_SECRET_LENGTH or settings.secret_key == DEV_SECRET_KEY:
        return [
            _problem(
                "secrets",
                f"SECRET_KEY is too weak for production: it must be at least {MIN_SECRET_LENGTH} "
                "characters and not the development key.",
                store,
            )
        ]
    return []


def debug_problems(settings: Settings) -> list[Problem]:
    if not (settings.production and settings.debug):
        return []
    return [
        _problem(
            "debug",
            f"FLASK_DEBUG is true (from {settings.source('FLASK_DEBUG')}) with APP_ENV=production. "
            "The Werkzeug debugger runs any Python code a visitor types into an error page.",
            "Unset FLASK_DEBUG (or set FLASK_DEBUG=0) for production.",
        )
    ]


def dev_server_problems(settings: Settings) -> list[Problem]:
    if not (settings.production and settings.launcher == "dev" and not settings.allow_dev_server):
        return []
    return [
        _problem(
            "launcher",
            "APP_LAUNCHER=dev with APP_ENV=production: the Flask development server is not "
            "built for production (one process, no protection from slow or malformed requests).",
            "Use APP_LAUNCHER=gunicorn (or auto), or waitress on Windows. If you really mean to "
            "expose the development server, set ALLOW_DEV_SERVER=1.",
        )
    ]


def replit_host_problems(settings: Settings) -> list[Problem]:
    if not (settings.replit_deployment and is_loopback(settings.host)):
        return []
    return [
        _problem(
            "address",
            f"HOST={settings.host} in a Replit deployment (REPLIT_DEPLOYMENT=1): a port opened on "
            "localhost cannot be reached by Replit's router, and promotion fails with 'this port "
            "was never opened'.",
            "Unset HOST (the default is 0.0.0.0) or set HOST=0.0.0.0.",
        )
    ]


RULES = (secret_problems, debug_problems, dev_server_problems, replit_host_problems)


def violations(settings: Settings) -> list[Problem]:
    """Every rule across settings that ``settings`` breaks."""
    return [problem for rule in RULES for problem in rule(settings)]


def validate(settings: Settings) -> None:
    """Refuse a start that breaks a rule across settings (the first one found)."""
    raise_first(violations(settings))
