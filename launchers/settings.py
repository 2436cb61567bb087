"""The one settings object every launcher and ``gunicorn_config.py`` use.

Each setting is declared once below, with its environment variable, type,
default, validator and description; ``.env.example``, the README table and
``python main.py config`` are all made from these declarations.

Precedence, highest first: command-line flag, environment, ``.env`` file,
default. A ``.env`` file is read with python-dotenv and never overrides a
variable that is already set. An empty value counts as unset.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from launchers.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOTENV_PATH = PROJECT_ROOT / ".env"

AppEnv = Literal["development", "production", "testing"]
LogLevel = Literal["debug", "info", "warning", "error"]

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 16


# --- converters: each raises ValueError with the accepted values ---------------


def to_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")


def choice(*options: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        word = text.strip().lower()
        if word not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return word

    convert.choices = options  # type: ignore[attr-defined]
    return convert


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    if minimum is not None and maximum is not None:
        accepted = f"a whole number from {minimum} to {maximum}"
    elif minimum is not None:
        accepted = f"a whole number, at least {minimum}"
    else:
        accepted = "a whole number"

    def convert(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"expected {accepted}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError(f"expected {accepted}")
        return value

    return convert


def seconds(minimum_exclusive: float = 0.0) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("expected a number of seconds, such as 8 or 2.5") from None
        if not (value > minimum_exclusive) or value != value or value == float("inf"):
            raise ValueError(f"expected a number of seconds greater than {minimum_exclusive:g}")
        return value

    return convert


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def address(text: str) -> str:
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if _HOSTNAME.match(value):
        return value.lower()
    raise ValueError("expected an IP address such as 0.0.0.0, 127.0.0.1 or ::, or a host name")


def text_value(text: str) -> str:
    return text


def launcher_name(text: str) -> str:
    from launchers.registry import names

    options = ("auto", *names())
    return choice(*options)(text)


# --- the declarations ------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Facts about where we run that defaults depend on (injected by tests)."""

    platform: str = sys.platform
    replit_deployment: bool = False
    usable_cpus: Callable[[], int] | None = None


@dataclass(frozen=True)
class Setting:
    env: str
    attr: str
    convert: Callable[[str], Any]
    default: Any  # a value, or a callable (values so far, context) -> (value, why)
    help: str
    accepted: str
    example: str = ""
    secret: bool = False

    def default_for(self, values: Mapping[str, Any], ctx: Context) -> tuple[Any, str]:
        if callable(self.default):
            return self.default(values, ctx)
        return self.default, ""


def _default_env(values: Mapping[str, Any], ctx: Context) -> tuple[str, str]:
    if ctx.replit_deployment:
        return "production", "REPLIT_DEPLOYMENT=1"
    return "development", ""


def _default_launcher(values: Mapping[str, Any], ctx: Context) -> tuple[str, str]:
    return "auto", ""


def _default_workers(values: Mapping[str, Any], ctx: Context) -> tuple[int, str]:
    from launchers.cpus import usable_cpus

    cpus = (ctx.usable_cpus or usable_cpus)()
    return workers_for(cpus), f"{cpus} usable CPU{'s' if cpus != 1 else ''}"


def workers_for(cpus: int) -> int:
    # gevent workers are event loops: one per usable CPU keeps every core busy
    # without processes competing for the same core. Measured on 2 CPUs at c64
    # (docs/performance.md): 2 workers 3,704 req/s (p99 35.6 ms), 3 workers 3,448
    # (p99 44.4 ms); the sync advice 2*CPU+1 served 2,518.
    return max(1, cpus)


def _default_secret(values: Mapping[str, Any], ctx: Context) -> tuple[str, str]:
    if values["env"] == "production":
        return "", "required in production"
    return DEV_SECRET_KEY, "fixed development key"


def _default_debug(values: Mapping[str, Any], ctx: Context) -> tuple[bool, str]:
    return values["env"] == "development", f"APP_ENV={values['env']}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "APP_ENV",
        "env",
        choice("development", "production", "testing"),
        _default_env,
        "Which environment: development turns on the debugger and reloader; production "
        "requires SECRET_KEY and a production server. FLASK_ENV is read when APP_ENV is unset.",
        "development, production, testing",
        example="development (production when REPLIT_DEPLOYMENT=1)",
    ),
    Setting(
        "APP_LAUNCHER",
        "launcher_choice",
        launcher_name,
        _default_launcher,
        "The server: auto picks dev in development, gunicorn in production on POSIX and "
        "waitress on Windows.",
        "auto, or a launcher in the registry (dev, gunicorn, waitress, granian)",
        example="auto",
    ),
    Setting(
        "HOST",
        "host",
        address,
        "0.0.0.0",
        "The address to listen on: 0.0.0.0 for every interface (Replit, containers), "
        "127.0.0.1 behind a reverse proxy on the same machine.",
        "an IP address or host name",
        example="0.0.0.0",
    ),
    Setting(
        "PORT",
        "port",
        integer(1, 65535),
        5000,
        "The port to listen on. Ports below 1024 need privileges: see docs/port-80.md.",
        "1-65535",
        example="5000",
    ),
    Setting(
        "WEB_CONCURRENCY",
        "workers",
        integer(1),
        _default_workers,
        "Worker processes (gunicorn, granian): by default one per CPU this process may "
        "really use (affinity and cgroup quota), not the host's count.",
        "a whole number, at least 1",
        example="(one per usable CPU)",
    ),
    Setting(
        "WEB_THREADS",
        "threads",
        integer(1, 1024),
        4,
        "Threads per process: waitress's request threads, gunicorn's gthread threads, "
        "granian's blocking threads.",
        "1-1024",
        example="4",
    ),
    Setting(
        "WORKER_CLASS",
        "worker_class",
        choice("gevent", "gthread", "sync"),
        "gevent",
        "gunicorn's worker type. gevent survives slow clients; gthread for code that must "
        "not be monkey-patched; sync only behind a buffering proxy.",
        "gevent, gthread, sync",
        example="gevent",
    ),
    Setting(
        "WORKER_CONNECTIONS",
        "worker_connections",
        integer(1, 100000),
        1000,
        "Open connections one process keeps at most (gunicorn gevent, waitress's "
        "connection_limit).",
        "1-100000",
        example="1000",
    ),
    Setting(
        "SECRET_KEY",
        "secret_key",
        text_value,
        _default_secret,
        "Signs sessions and cookies. Required in production (at least 16 characters); a "
        "fixed key is used in development and testing.",
        f"a random string of at least {MIN_SECRET_LENGTH} characters",
        example="",
        secret=True,
    ),
    Setting(
        "TRUSTED_PROXY_HOPS",
        "proxy_hops",
        integer(0, 10),
        0,
        "How many reverse proxies in front set X-Forwarded-*; 0 trusts none of those headers.",
        "0-10",
        example="0",
    ),
    Setting(
        "GRACEFUL_TIMEOUT",
        "graceful_timeout",
        seconds(),
        8.0,
        "Seconds a stopping server gives requests in flight; keep it below the platform's "
        "kill time (Cloud Run, Replit and Docker 10 s, Heroku 30 s).",
        "seconds, greater than 0",
        example="8",
    ),
    Setting(
        "REQUEST_TIMEOUT",
        "request_timeout",
        seconds(),
        30.0,
        "Seconds a request may take before its gunicorn worker is restarted; also how long "
        "waitress keeps an idle connection.",
        "seconds, greater than 0",
        example="30",
    ),
    Setting(
        "KEEPALIVE",
        "keepalive",
        seconds(),
        5.0,
        "Seconds an idle keep-alive connection is held open; behind a proxy keep it above "
        "the proxy's idle timeout.",
        "seconds, greater than 0",
        example="5",
    ),
    Setting(
        "MAX_REQUESTS",
        "max_requests",
        integer(0),
        0,
        "Restart a gunicorn worker after this many requests (with jitter), to bound leaks; "
        "0 never restarts.",
        "a whole number, at least 0",
        example="0",
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        "max_content_length",
        integer(1),
        1024 * 1024,
        "The largest request body, in bytes; a larger one gets 413.",
        "a whole number of bytes, at least 1",
        example="1048576",
    ),
    Setting(
        "LOG_LEVEL",
        "log_level",
        choice("debug", "info", "warning", "error"),
        "info",
        "The least severe log line written.",
        "debug, info, warning, error",
        example="info",
    ),
    Setting(
        "LOG_FORMAT",
        "log_format",
        choice("text", "json"),
        "text",
        "text for people, json (one object a line) for log collectors.",
        "text, json",
        example="text",
    ),
    Setting(
        "FLASK_DEBUG",
        "debug",
        to_bool,
        _default_debug,
        "The Werkzeug debugger and reloader (dev launcher only). Never allowed in production.",
        "true/false (1, yes, on / 0, no, off)",
        example="(true in development)",
    ),
    Setting(
        "ALLOW_DEV_SERVER",
        "allow_dev_server",
        to_bool,
        False,
        "Lets APP_LAUNCHER=dev run with APP_ENV=production, for a demo you mean to expose.",
        "true/false",
        example="false",
    ),
)

BY_ENV = {s.env: s for s in SETTINGS}
FLAGS = {"launcher": "APP_LAUNCHER", "host": "HOST", "port": "PORT"}


@dataclass(frozen=True)
class Settings:
    env: AppEnv
    launcher_choice: str
    host: str
    port: int
    workers: int
    threads: int
    worker_class: str
    worker_connections: int
    secret_key: str = field(repr=False)
    proxy_hops: int
    graceful_timeout: float
    request_timeout: float
    keepalive: float
    max_requests: int
    max_content_length: int
    log_level: LogLevel
    log_format: str
    debug: bool
    allow_dev_server: bool
    # Derived, not read from a variable of its own:
    launcher: str
    platform: str
    replit_deployment: bool
    sources: Mapping[str, str] = field(compare=False)
    notices: tuple[str, ...] = ()  # one log line each, written when a server starts

    @property
    def production(self) -> bool:
        return self.env == "production"

    def source(self, env_name: str) -> str:
        return self.sources.get(env_name, "default")

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, where it came from) for each setting."""
        rows = []
        for s in SETTINGS:
            value = getattr(self, s.attr)
            if s.secret:
                shown = "(set, hidden)" if value else "(not set)"
            else:
                shown = str(value).lower() if isinstance(value, bool) else str(value)
            if s.env == "APP_LAUNCHER":
                shown = f"{value} -> {self.launcher}" if value == "auto" else shown
            rows.append((s.env, shown, self.source(s.env)))
        return rows

    def flask_config(self) -> dict[str, Any]:
        return {
            "SETTINGS": self,
            "APP_ENV": self.env,
            "LAUNCHER": self.launcher,
            "SECRET_KEY": self.secret_key,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "TRUSTED_PROXY_HOPS": self.proxy_hops,
            "LOG_LEVEL": self.log_level,
            "LOG_FORMAT": self.log_format,
            "DEBUG": self.debug and self.launcher == "dev",
            "TESTING": self.env == "testing",
        }

    def replace(self, **changes: Any) -> Settings:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(changes)
        return Settings(**data)


def _problem(name: str, raw: str, why: str, source: str, fix: str = "") -> ConfigError:
    where = f" (from {source})" if source not in ("environment", "default") else ""
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    message = f"{name}={shown!r}{where} is not valid: {why}."
    if fix:
        message += f" {fix}"
    else:
        message += f" Set {name} to an accepted value, or unset it to use the default."
    return ConfigError(message)


def dotenv_file(environ: Mapping[str, str], default: Path | None) -> Path | None:
    """ENV_FILE names another .env file, or ``none`` to read none (tests use it)."""
    chosen = environ.get("ENV_FILE", "")
    if chosen == "":
        return default
    if chosen.lower() == "none":
        return None
    path = Path(chosen)
    if not path.is_file():
        raise ConfigError(
            f"ENV_FILE={chosen!r} is not a readable file. Point it at a .env file, "
            "or set ENV_FILE=none to read none."
        )
    return path


def read_dotenv(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    dotenv_path: Path | None = DOTENV_PATH,
    context: Context | None = None,
    check: bool = True,
) -> Settings:
    """Read every setting once. Raises ConfigError naming the variable at fault.

    ``check=False`` skips ``validate`` (the rules across settings): ``doctor`` reports
    each broken rule itself instead of stopping at the first.
    """
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(dotenv_file(environ, dotenv_path))
    flags = {FLAGS[k]: v for k, v in (flags or {}).items() if v is not None and k in FLAGS}

    def lookup(name: str) -> tuple[str | None, str]:
        if name in flags:
            return str(flags[name]), f"flag --{name.lower().replace('app_', '')}"
        if environ.get(name, "") != "":
            return environ[name], "environment"
        if dotenv.get(name, "") != "":
            return dotenv[name], ".env"
        return None, "default"

    replit_raw, _ = lookup("REPLIT_DEPLOYMENT")
    ctx = context or Context(replit_deployment=(replit_raw or "").strip() == "1")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        name = s.env
        raw, source = lookup(name)
        if raw is None and name == "APP_ENV":
            legacy, legacy_source = lookup("FLASK_ENV")
            if legacy is not None:
                name, raw, source = "FLASK_ENV", legacy, f"{legacy_source} (FLASK_ENV, legacy)"
        if raw is None:
            value, why = s.default_for(values, ctx)
            source = f"default ({why})" if why else "default"
        else:
            try:
                value = s.convert(raw)
            except ValueError as exc:
                raise _problem(name, raw, str(exc), source) from None
        values[s.attr] = value
        sources[s.env] = source

    from launchers.registry import resolve_auto

    if values["launcher_choice"] == "auto":
        launcher, why = resolve_auto(values["env"], ctx.platform)
        sources["APP_LAUNCHER"] = f"{sources['APP_LAUNCHER']}: auto chose {launcher} ({why})"
    else:
        launcher = values["launcher_choice"]

    notices: list[str] = []
    if ctx.replit_deployment:
        _replit_port(values, sources, notices)
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


def _replit_port(values: dict[str, Any], sources: dict[str, str], notices: list[str]) -> None:
    """Replit maps the ``.replit`` localPort to 80 and may set PORT=80 too.

    The container does not run as root, so PORT=80 cannot be bound there: serve
    on the internal port that Replit routes port 80 to instead.
    """
    from launchers.ports import can_bind_port, replit_internal_port

    if sources["PORT"] == "default":
        # No PORT given: listen where Replit's router looks, the .replit localPort.
        values["port"] = replit_internal_port()
        sources["PORT"] = "default (the localPort .replit maps to externalPort 80)"
        return
    port = values["port"]
    if can_bind_port(port):
        return
    internal = replit_internal_port()
    values["port"] = internal
    sources["PORT"] = (
        f"{sources['PORT']}, replaced: {port} is privileged here; .replit maps {internal} to 80"
    )
    notices.append(
        f"PORT={port} ignored in this Replit deployment: it is a privileged port this process "
        f"may not bind; serving on {internal}, the localPort .replit maps to externalPort 80."
    )


KEYGEN_COMMAND = "python -c 'import secrets; print(secrets.token_hex(32))'"
# Where a secret belongs: the platform's store, never the repository.
SECRET_STORES = (
    "the platform's secrets (Replit: Secrets tab; Heroku: config vars; systemd: EnvironmentFile)"  # noqa: E501, S105
)


@dataclass(frozen=True)
class Violation:
    """A rule across settings that a start breaks.

    ``message`` is the paragraph a refused start prints; ``check``, ``summary``
    and ``fix`` are the same rule as ``python main.py doctor`` shows it.
    """

    check: str
    summary: str
    fix: str
    message: str


def violations(settings: Settings) -> list[Violation]:
    """Every rule that involves more than one setting and that ``settings`` breaks."""
    found: list[Violation] = []
    if settings.production:
        if not settings.secret_key:
            found.append(
                Violation(
                    "secrets",
                    "APP_ENV=production and SECRET_KEY is not set: the server refuses to start",
                    f"generate one with {KEYGEN_COMMAND} and set it in {SECRET_STORES}",
                    "APP_ENV=production needs SECRET_KEY, and it is not set. Sessions and signed "
                    "cookies would be forgeable with a known key. Generate one with\n"
                    f"    {KEYGEN_COMMAND}\n"
                    "and set it in the platform's secrets (Replit: Secrets tab; Heroku: config vars; "
                    "systemd: the EnvironmentFile), never in the repository.",
                )
            )
        elif len(settings.secret_key) < MIN_SECRET_LENGTH or settings.secret_key == DEV_SECRET_KEY:
            found.append(
                Violation(
                    "secrets",
                    f"SECRET_KEY is too weak for production (under {MIN_SECRET_LENGTH} characters, "
                    "or the development key): the server refuses to start",
                    f"generate one with {KEYGEN_COMMAND} and set it in {SECRET_STORES}",
                    f"SECRET_KEY is too weak for production: it must be at least {MIN_SECRET_LENGTH} "
                    f"characters and not the development key. Generate one with {KEYGEN_COMMAND}.",
                )
            )
        if settings.debug:
            source = settings.source("FLASK_DEBUG")
            found.append(
                Violation(
                    "debug",
                    f"FLASK_DEBUG is true (from {source}) in production: the debugger would run any "
                    "code a visitor types; the server refuses to start",
                    "unset FLASK_DEBUG, or FLASK_DEBUG=0",
                    f"FLASK_DEBUG is true (from {source}) with APP_ENV=production. "
                    "The Werkzeug debugger runs any Python code a visitor types into an error page. "
                    "Unset FLASK_DEBUG (or set FLASK_DEBUG=0) for production.",
                )
            )
        if settings.launcher == "dev" and not settings.allow_dev_server:
            found.append(
                Violation(
                    "launcher",
                    "APP_LAUNCHER=dev with APP_ENV=production: the server refuses to start",
                    "APP_LAUNCHER=auto (gunicorn; waitress on Windows); ALLOW_DEV_SERVER=1 if "
                    "you really mean to expose the development server",
                    "APP_LAUNCHER=dev with APP_ENV=production: the Flask development server is not "
                    "built for production (one process, no graceful stop, no protection from slow or "
                    "malformed requests). Use APP_LAUNCHER=gunicorn (or auto), or waitress on Windows. "
                    "If you really mean to expose the development server, set ALLOW_DEV_SERVER=1.",
                )
            )
    if settings.replit_deployment and is_loopback(settings.host):
        found.append(
            Violation(
                "address",
                f"HOST={settings.host} in a Replit deployment: Replit's router cannot reach a port "
                "on localhost, so promotion fails with 'this port was never opened'",
                "unset HOST (the default is 0.0.0.0) or set HOST=0.0.0.0",
                f"HOST={settings.host} in a Replit deployment (REPLIT_DEPLOYMENT=1): a port opened on "
                "localhost cannot be reached by Replit's router, and promotion fails with 'this port "
                "was never opened'. Unset HOST (the default is 0.0.0.0) or set HOST=0.0.0.0.",
            )
        )
    return found


def validate(settings: Settings) -> None:
    """Refuse a start that breaks a rule across settings (the first one found)."""
    broken = violations(settings)
    if broken:
        raise ConfigError(broken[0].message)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
