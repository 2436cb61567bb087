"""Reading the settings: flag, then environment, then ``.env``, then default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from settings.declared import DOTENV_PATH, SETTINGS, Context, Settings, resolved_launcher
from settings.errors import ConfigError
from settings.registry import resolve_auto
from settings.rules import validate


def _invalid(name: str, raw: str, why: str, source: str) -> ConfigError:
    where = f" (from {source})" if source not in ("environment", "default") else ""
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    return ConfigError(
        f"{name}={shown!r}{where} is not valid: {why}. "
        f"Set {name} to an accepted value, or unset it to use the default."
    )


def dotenv_values(environ: Mapping[str, str], default: Path | None) -> dict[str, str]:
    """The .env file's values: ENV_FILE names another file, or ``none`` for none."""
    chosen = environ.get("ENV_FILE", "")
    path = default if chosen == "" else None if chosen.lower() == "none" else Path(chosen)
    if chosen not in ("", "none") and not Path(chosen).is_file():
        raise ConfigError(
            f"ENV_FILE={chosen!r} is not a readable file. Point it at a .env file, "
            "or set ENV_FILE=none to read none."
        )
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values as read

    return {k: v for k, v in read(path).items() if v is not None}


def load_settings(
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    dotenv_path: Path | None = DOTENV_PATH,
    context: Context | None = None,
    check: bool = True,
) -> Settings:
    """Read every setting once. Raises ConfigError naming the variable at fault.

    ``environ`` defaults to ``os.environ``; ``dotenv_path=None`` reads no ``.env``.
    ``check=False`` skips the rules across settings (``settings.rules``):
    ``doctor`` lists each broken rule itself instead of stopping at the first.
    """
    environ = os.environ if environ is None else environ
    dotenv = dotenv_values(environ, dotenv_path)
    flags = {k: v for k, v in (flags or {}).items() if v is not None}

    def lookup(s_env: str, flag: str = "") -> tuple[str | None, str]:
        if flag and flags.get(flag.lstrip("-")) is not None:
            return str(flags[flag.lstrip("-")]), f"flag {flag}"
        if environ.get(s_env, "") != "":
            return environ[s_env], "environment"
        if dotenv.get(s_env, "") != "":
            return dotenv[s_env], ".env"
        return None, "default"

    ctx = context or Context()
    if ctx.replit_deployment is None:
        ctx = replace(ctx, replit_deployment=(lookup("REPLIT_DEPLOYMENT")[0] or "").strip() == "1")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        name, (raw, source) = s.env, lookup(s.env, s.flag)
        if raw is None and name == "APP_ENV" and lookup("FLASK_ENV")[0] is not None:
            raw, legacy = lookup("FLASK_ENV")
            name, source = "FLASK_ENV", f"{legacy} (FLASK_ENV, legacy)"
        if raw is None:
            value, why = s.default_for(values, ctx)
            source = f"default ({why})" if why else "default"
        else:
            try:
                value = s.convert(raw)
            except ValueError as exc:
                raise _invalid(name, raw, str(exc), source) from None
        values[s.attr] = value
        sources[s.env] = source

    launcher = resolved_launcher(values, ctx)
    if values["app_launcher"] == "auto":
        why = resolve_auto(values["env"], ctx.platform)[1]
        sources["APP_LAUNCHER"] += f": auto chose {launcher} ({why})"
    notices = []
    if launcher != "dev" and values["env"] == "development" and sources["APP_ENV"] == "default":
        # A production server started without APP_ENV (a Procfile host, a bare
        # `gunicorn -c gunicorn_config.py wsgi:app`) would sign sessions with the
        # published development key: say so where the operator looks.
        notices.append(
            f"{launcher} is serving with APP_ENV unset, so in development mode: sessions are "
            "signed with the fixed development SECRET_KEY. On a public host set "
            "APP_ENV=production and SECRET_KEY."
        )
    settings = Settings(
        **values,
        launcher=launcher,
        platform=ctx.platform,
        replit_deployment=ctx.replit_deployment,
        sources=sources,
        notices=tuple(notices),
    )
    if check:
        validate(settings)
    return settings
