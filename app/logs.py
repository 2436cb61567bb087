"""Logging: one configuration for every launcher, text or JSON lines.

The app writes the access log itself (one line per request: method, path,
status, duration, request id, client address, from app/middleware.py), so it
reads the same under every server; gunicorn's and Werkzeug's own access logs are
off to avoid a line twice. Access lines go to stdout, everything else to stderr.
gunicorn's own lines (gunicorn.error) use the same formatter (launchers/gunicorn.py),
so LOG_FORMAT=json gives one JSON object a line from every part of the process.

What a client sends (the path, the method, a forwarded address) is escaped in
text lines, as nginx does (``\\x0D``), so that no request can write a line of its
own; JSON lines are escaped by the JSON encoder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from app.line_handler import LineHandler

ACCESS_NAME = "app.access"
ACCESS = logging.getLogger(ACCESS_NAME)
_configured: tuple[str, str] | None = None
_access_handler: LineHandler | None = None  # the one configure_logging gave the access log

TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "request_id", "remote_addr")

# Control characters (C0, DEL, C1), the line and paragraph separators, the quote
# that delimits the request, and the backslash that escapes.
_UNSAFE = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029"\\\\]')


def _hex(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"


def _is_plain(text: str) -> bool:
    # isprintable() is false for every control character and line separator.
    return text.isprintable() and '"' not in text and "\\" not in text


def escape(text: str) -> str:
    """``text`` with every character that could end or forge a log line escaped."""
    return text if _is_plain(text) else _UNSAFE.sub(_hex, text)


class JsonFormatter(logging.Formatter):
    FIELDS = ACCESS_FIELDS

    def format(self, record: logging.LogRecord) -> str:
        data = self.head(record.created, record.levelname, record.name, record.process)
        data["message"] = record.getMessage()
        for name in self.FIELDS:
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)

    @staticmethod
    def head(created: float, levelname: str, name: str, pid: int | None) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": levelname.lower(),
            "logger": name,
            "pid": pid,
        }

    def access_line(self, created: float, message: str, values: tuple) -> str:
        """What ``format`` writes for the access line's record (see ``log_access``)."""
        data = self.head(created, "INFO", ACCESS_NAME, _pid)
        data["message"] = message
        data.update(access_fields(values))
        return json.dumps(data)


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, the date and time made once a second rather than once a line."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._stamp = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        # logging.Formatter.format's result for TEXT_FORMAT, without its calls that lead
        # only here (tests/test_app_logs.py checks that both agree).
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        return (
            f"{record.asctime} [{record.process}] [{record.levelname}] "
            f"{record.name}: {record.message}"
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float) -> str:
        """``%(asctime)s``: the date and time, a comma and the milliseconds."""
        second = int(created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (
                second,
                time.strftime("%Y-%m-%d %H:%M:%S,", time.localtime(second)),
            )
        return stamp[1] + _MILLISECONDS[int(msecs)]

    def access_line(self, created: float, message: str, values: tuple) -> str:
        """What ``format`` writes for the access line's record (see ``log_access``)."""
        return self.stamp(created, _msecs(created)) + _access_prefix + message


_MILLISECONDS = tuple(f"{ms:03d}" for ms in range(1000))  # msecs is in [0, 1000)


def _msecs(created: float) -> float:
    return int((created - int(created)) * 1000) + 0.0  # as logging.LogRecord counts them


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT ``text`` or ``json``."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure_logging(level: str, fmt: str) -> None:
    """Configure the root logger and the access log once per process (idempotent).

    The access log has its own handler and does not propagate: its lines are
    written once, to stdout, without passing the root's handlers on the way.
    """
    global _configured
    if _configured == (level, fmt):
        return
    _configured = (level, fmt)
    global _access_handler
    formatter = make_formatter(fmt)
    errors = logging.StreamHandler(sys.stderr)
    access = _access_handler = LineHandler(sys.stdout)
    for logger, handler in ((logging.getLogger(), errors), (ACCESS, access)):
        for old in list(logger.handlers):
            if getattr(old, "_app_handler", False):
                logger.removeHandler(old)
        handler.setFormatter(formatter)
        handler._app_handler = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    ACCESS.propagate = False
    logging.getLogger().setLevel(level.upper())


def _prefix(pid: int) -> str:
    """What an access line holds between its time stamp and its message."""
    return f" [{pid}] [INFO] {ACCESS_NAME}: "


_pid = os.getpid()
_access_prefix = _prefix(_pid)


def _forked() -> None:
    global _pid, _access_prefix
    _pid = os.getpid()
    _access_prefix = _prefix(_pid)


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forked)


class AccessRecord(logging.LogRecord):
    """The access line's record, made without what ``Logger.info`` adds to it: the
    search of the stack for the caller, and the set-up of fields that are the same
    for every access line, copied here from one template (docs/performance.md)."""

    TEMPLATE: dict[str, Any] = {
        "name": ACCESS.name,
        "args": (),
        "levelname": "INFO",
        "levelno": logging.INFO,
        "pathname": __file__,
        "filename": "logs.py",
        "module": "logs",
        "exc_info": None,
        "exc_text": None,
        "stack_info": None,
        "lineno": 0,
        "funcName": "log_access",
        "threadName": None,
        "processName": None,
        "taskName": None,
    }

    def __init__(self, values: tuple, message: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        record = self.TEMPLATE.copy()
        record.update(access_fields(values))
        record["msg"] = message
        record["created"] = now
        record["msecs"] = _msecs(now)
        record["relativeCreated"] = (now - logging._startTime) * 1000
        record["thread"] = threading.get_ident()
        record["process"] = _pid
        self.__dict__ = record


def log_access(
    method: str,
    path: str,
    query: str,
    status: int,
    duration_ms: float,
    request_id: str,
    remote_addr: str | None,
) -> None:
    """One access line: ``method path status duration_ms request_id remote_addr``
    (``duration_ms`` as measured: the line shows it to 0.01 ms, and the JSON field and
    the record's attribute hold it rounded so)."""
    target = f"{path}?{query}" if query else path
    client, verb = remote_addr or "-", method
    # What the client controls, escaped (one check for all three in the usual case).
    if not _is_plain(client + verb + target):
        client, verb, target = escape(client), escape(verb), escape(target)
    message = f'{client} "{verb} {target}" {status} {duration_ms:.2f}ms id={request_id}'
    values = (method, path, status, duration_ms, request_id, remote_addr)  # ACCESS_FIELDS
    handler = _direct_handler()
    if handler is None:
        ACCESS.handle(AccessRecord(values, message))
        return
    now = time.time()
    line = handler.formatter.access_line(now, message, values)  # type: ignore[union-attr]
    handler.write_line(line, lambda: AccessRecord(values, message, now))


def access_fields(values: tuple) -> dict[str, Any]:
    """The access line's fields by name, from ``log_access``'s values in ACCESS_FIELDS' order."""
    fields = dict(zip(ACCESS_FIELDS, values, strict=True))
    fields["duration_ms"] = round(fields["duration_ms"], 2)
    return fields


_DIRECT_FORMATTERS = (TextFormatter, JsonFormatter)


def _direct_handler() -> LineHandler | None:
    """The access log's own handler, when what ``ACCESS.handle`` would do with the
    access line's record comes down to that handler writing its line: no filter,
    no other handler, the handler and formatter ``configure_logging`` set up.

    The line is then formatted from its fields and written, without the record, the
    filters and the calls that lead only there (about half of what the line cost,
    docs/performance.md). A forker's handler or filter on app.access gets records.
    """
    handlers = ACCESS.handlers
    if len(handlers) != 1 or ACCESS.filters or ACCESS.disabled:
        return None
    handler = handlers[0]
    if (
        handler is not _access_handler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) not in _DIRECT_FORMATTERS
    ):
        return None
    return handler
