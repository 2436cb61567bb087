"""Every setting, declared once as a field of ``Settings``; ``SETTINGS`` is read back from them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from settings import registry
from settings.fields import Converter, Default, address, choice, integer, seconds, setting, text
from settings.fields import declarations as _declarations
from settings.rules import DEV_SECRET_KEY, MIN_SECRET_LENGTH

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOTENV_PATH = PROJECT_ROOT / ".env"
# Read by the loader besides the declared settings.
OTHER_VARIABLES = ("FLASK_ENV", "REPLIT_DEPLOYMENT", "ENV_FILE")


@dataclass(frozen=True)
class Context:
    """Facts about where we run that defaults depend on (injected by tests)."""

    platform: str = sys.platform
    replit_deployment: bool | None = None  # None: REPLIT_DEPLOYMENT=1 says
    usable_cpus: Callable[[], int] | None = None


def _env(values: dict, ctx: Context) -> tuple[str, str]:
    return ("production", "REPLIT_DEPLOYMENT=1") if ctx.replit_deployment else ("development", "")


def resolved_launcher(values: dict, ctx: Context) -> str:
    """The launcher APP_LAUNCHER names, with auto resolved."""
    if values["app_launcher"] != "auto":
        return values["app_launcher"]
    return registry.resolve_auto(values["env"], ctx.platform)[0]


def _workers(values: dict, ctx: Context) -> tuple[int, str]:
    from settings.cpus import usable_cpus

    cpus = (ctx.usable_cpus or usable_cpus)()
    # One worker per usable CPU: docs/performance.md has the figures behind it.
    return max(1, cpus), f"{cpus} usable CPU{'s' * (cpus != 1)}"


def _secret(values: dict, ctx: Context) -> tuple[str, str]:
    if values["env"] == "production":
        return "", "required in production"
    return DEV_SECRET_KEY, "fixed development key"


def _debug(values: dict, ctx: Context) -> tuple[bool, str]:
    launcher = resolved_launcher(values, ctx)
    return values[
        "env"
    ] == "development" and launcher == "dev", f"APP_ENV={values['env']}, {launcher}"


class HostNames(tuple):
    """Host names, shown as they are written: separated by commas."""

    def __str__(self) -> str:
        return ",".join(self)


def _host_names(text: str) -> HostNames:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    for name in names:
        bare = name.removeprefix(".")
        try:
            valid = ":" not in bare and bool(address(bare))  # werkzeug cannot match IPv6
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(
                f"{name!r} is not a host name: expected names such as example.com, "
                ".example.com (every subdomain) or 127.0.0.1, separated by commas"
            )
    return HostNames(names)


host_names = Converter("host names, comma-separated (.example.com: every subdomain)", _host_names)


def _any_host(values: dict, ctx: Context) -> tuple[HostNames, str]:
    return HostNames(), ""


@dataclass(frozen=True, kw_only=True)
class Settings:
    env: Literal["development", "production", "testing"] = setting(
        "APP_ENV",
        Default(_env, "development (production when REPLIT_DEPLOYMENT=1)"),
        "Which environment: development turns on the debugger and reloader; production "
        "requires SECRET_KEY and a production server. FLASK_ENV is read when APP_ENV is unset.",
    )
    app_launcher: str = setting(
        "APP_LAUNCHER",
        "auto",
        "The server: auto picks "
        + "; ".join(
            f"{n} for {registry.AUTO_WHEN[s.auto]}" for n, s in registry.LAUNCHERS.items() if s.auto
        )
        + ".",
        convert=choice("auto", *registry.LAUNCHERS),
        flag="--launcher",
    )
    host: str = setting(
        "HOST",
        "0.0.0.0",
        "The address to listen on: 0.0.0.0 for every interface (Replit, containers), "
        "127.0.0.1 behind a reverse proxy on the same machine.",
        convert=address,
        flag="--host",
    )
    port: int = setting(
        "PORT",
        5000,
        "The port to listen on. Ports below 1024 need privileges: see docs/port-80.md.",
        convert=integer(1, 65535),
        flag="--port",
    )
    workers: int = setting(
        "WEB_CONCURRENCY",
        Default(_workers, "(one per usable CPU)"),
        "Worker processes (gunicorn, granian): by default one per CPU this process may "
        "really use (affinity and cgroup quota), not the host's count.",
        convert=integer(1),
    )
    threads: int = setting(
        "WEB_THREADS",
        4,
        "Threads per process: waitress's request threads, gunicorn's gthread threads, "
        "the requests granian's app runs at once in each worker.",
        convert=integer(1, 1024),
    )
    worker_class: Literal["gevent", "gthread", "sync"] = setting(
        "WORKER_CLASS",
        "gevent",
        "gunicorn's worker type. gevent survives slow clients; gthread for code that must "
        "not be monkey-patched; sync only behind a buffering proxy.",
    )
    worker_connections: int = setting(
        "WORKER_CONNECTIONS",
        1000,
        "Open connections one process keeps at most (gunicorn gevent, waitress's "
        "connection_limit, granian's backpressure and blocking threads).",
        convert=integer(1, 100000),
    )
    secret_key: str = setting(
        "SECRET_KEY",
        Default(_secret, ""),
        "Signs sessions and cookies. Required in production; a fixed key is used in "
        "development and testing.",
        convert=text(f"a random string of at least {MIN_SECRET_LENGTH} characters"),
        secret=True,
    )
    proxy_hops: int = setting(
        "TRUSTED_PROXY_HOPS",
        0,
        "How many reverse proxies in front set X-Forwarded-*; 0 trusts none of those headers.",
        convert=integer(0, 10),
    )
    trusted_hosts: HostNames = setting(
        "TRUSTED_HOSTS",
        Default(_any_host, "(empty: any host)"),
        "The host names the app answers to (Host, or X-Forwarded-Host from a trusted proxy); "
        "any other gets 400. Set it in production: your domains, and 127.0.0.1 or localhost "
        "too if a health check calls the app by that name (the Dockerfile's does).",
        convert=host_names,
    )
    graceful_timeout: float = setting(
        "GRACEFUL_TIMEOUT",
        8.0,
        "Seconds a stopping server gives requests in flight; keep it below the platform's "
        "kill time (Cloud Run, Replit and Docker 10 s, Heroku 30 s).",
        convert=seconds,
    )
    request_timeout: float = setting(
        "REQUEST_TIMEOUT",
        30.0,
        "Seconds a request may take before its gunicorn worker is restarted; also how long "
        "waitress keeps an idle connection.",
        convert=seconds,
    )
    keepalive: float = setting(
        "KEEPALIVE",
        5.0,
        "Seconds an idle keep-alive connection is held open; behind a proxy keep it above "
        "the proxy's idle timeout.",
        convert=seconds,
    )
    max_requests: int = setting(
        "MAX_REQUESTS",
        0,
        "Restart a gunicorn worker after this many requests (with jitter), to bound leaks; "
        "0 never restarts.",
        convert=integer(0),
    )
    max_content_length: int = setting(
        "MAX_CONTENT_LENGTH",
        1024 * 1024,
        "The largest request body, in bytes; a larger one gets 413.",
        convert=integer(1, unit="bytes"),
    )
    log_level: Literal["debug", "info", "warning", "error"] = setting(
        "LOG_LEVEL", "info", "The least severe log line written."
    )
    log_format: Literal["text", "json"] = setting(
        "LOG_FORMAT", "text", "text for people, json (one object a line) for log collectors."
    )
    debug: bool = setting(
        "FLASK_DEBUG",
        Default(_debug, "(true in development with the dev launcher)"),
        "The Werkzeug debugger and reloader (dev launcher only). Never allowed in production.",
    )
    metrics: bool = setting(
        "METRICS",
        False,
        "Serve Prometheus metrics at /metrics, summed over every worker; off, /metrics is 404 "
        "and nothing is measured. Keep /metrics private: see docs/metrics.md.",
    )
    allow_dev_server: bool = setting(
        "ALLOW_DEV_SERVER",
        False,
        "Lets APP_LAUNCHER=dev run with APP_ENV=production, for a demo you mean to expose.",
    )
    # Derived, not read from a variable of their own:
    launcher: str = ""
    platform: str = sys.platform
    replit_deployment: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
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
            elif s.attr == "app_launcher" and value == "auto":
                shown = f"auto -> {self.launcher}"
            else:
                shown = str(value).lower() if isinstance(value, bool) else str(value)
            rows.append((s.env, shown, self.source(s.env)))
        return rows

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


SETTINGS = _declarations(Settings)
BY_ENV = {s.env: s for s in SETTINGS}
VARIABLES = (*BY_ENV, *OTHER_VARIABLES)  # every variable the loader reads
