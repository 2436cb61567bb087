"""Whether a gunicorn worker refuses, itself, the request heads the app refuses.

gunicorn's own HTTP/1 parser refuses a request line over ``limit_request_line``,
more than ``limit_request_fields`` fields and a field line over
``limit_request_field_size`` (launchers/gunicorn.py's ``options`` sets them from
app.limits). When a worker parses with it and those limits are the app's or
stricter, the app leaves the check to gunicorn (``leave_head_limits_to_server`` in
app/middleware.py) instead of doing it again on every request. Anything else keeps
the app checking: looser limits (``--limit-request-line 0``: none), a worker class
that hands the socket to another server's parser (``gevent_pywsgi``, ``tornado``,
``asgi``), or HTTP/2, which gunicorn measures by its own rules.

gunicorn measures each line as it was sent; the app, which sees the environ, a
header sent twice as the one field the server joined. So where gunicorn refuses, a
header sent on two lines, each within the limit, is served (docs/production.md).
"""

from __future__ import annotations

from typing import Any

from app import limits as request_limits


def leave_head_limits_to_gunicorn(worker: Any) -> bool:
    """In a worker, after the app is loaded: tell the app, when gunicorn refuses its
    heads itself. Whether it did."""
    if not (_parses_with_gunicorn(worker) and _holds_the_app_s_limits(worker.cfg)):
        return False
    from app.middleware import leave_head_limits_to_server

    return leave_head_limits_to_server(worker.wsgi)


# The worker classes that read requests with gunicorn's parser, and those derived from
# them (gevent's and eventlet's derive from AsyncWorker). Named, not imported: a worker
# has imported its own class's module, and need not import the others'.
_OWN_PARSER = {
    ("gunicorn.workers.sync", "SyncWorker"),
    ("gunicorn.workers.gthread", "ThreadWorker"),
    ("gunicorn.workers.base_async", "AsyncWorker"),
}


def _parses_with_gunicorn(worker: Any) -> bool:
    if getattr(worker, "server_class", None) is not None:  # gevent_pywsgi, gevent_wsgi
        return False
    return any((c.__module__, c.__qualname__) in _OWN_PARSER for c in type(worker).__mro__)


def _holds_the_app_s_limits(cfg: Any) -> bool:
    return (
        "h2" not in getattr(cfg, "http_protocols", ())
        and 0 < cfg.limit_request_line <= request_limits.REQUEST_LINE_BYTES
        and 0 < cfg.limit_request_fields <= request_limits.HEADER_FIELDS
        and 0 < cfg.limit_request_field_size <= request_limits.HEADER_LINE_BYTES
    )
