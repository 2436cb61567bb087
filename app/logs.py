"""Logging: one configuration for every launcher, text or JSON lines.

The app writes the access log itself (one line per request: method, path,
status, duration, request id), so it reads the same under every server;
gunicorn's and Werkzeug's own access logs are off to avoid a line twice.
Access lines go to stdout, everything else to stderr. gunicorn's own lines
(gunicorn.error) use the same formatter (launchers/gunicorn.py), so
LOG_FORMAT=json gives one JSON object a line from every part of the process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from flask import Flask, Response, g, request

from app.security import request_id

ACCESS = logging.getLogger("app.access")
_configured: tuple[str, str] | None = None


TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    FIELDS = ("method", "path", "status", "duration_ms", "request_id", "remote_addr")

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT ``text`` or ``json``."""
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, fmt: str) -> None:
    """Configure the root logger once per process (idempotent)."""
    global _configured
    if _configured == (level, fmt):
        return
    _configured = (level, fmt)
    formatter = make_formatter(fmt)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_app_handler", False):
            root.removeHandler(handler)
    errors = logging.StreamHandler(sys.stderr)
    errors.addFilter(lambda record: record.name != ACCESS.name)
    access = logging.StreamHandler(sys.stdout)
    access.addFilter(lambda record: record.name == ACCESS.name)
    for handler in (errors, access):
        handler.setFormatter(formatter)
        handler._app_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())


def _start_timer() -> None:
    g.started = time.perf_counter()


def _log_access(response: Response) -> Response:
    if not ACCESS.isEnabledFor(logging.INFO):
        return response  # LOG_LEVEL above info: skip building a line nobody writes
    duration_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)
    rid = request_id()
    ACCESS.info(
        '%s "%s %s" %s %.2fms id=%s',
        request.remote_addr or "-",
        request.method,
        request.full_path.rstrip("?"),
        response.status_code,
        duration_ms,
        rid,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "request_id": rid,
            "remote_addr": request.remote_addr,
        },
    )
    return response


def register_access_log(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_log_access)
