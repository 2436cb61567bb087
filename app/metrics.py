"""Prometheus metrics (METRICS on): the metrics' names, what each request records, /metrics.

Imported only when METRICS is on (``create_app``), so with it off prometheus_client
is never loaded and a request costs nothing more. The names are OpenTelemetry's
HTTP server names as Prometheus exports them.

Under the launchers every worker process writes its values to the folder in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, app/metrics_files.py)
and /metrics sums the folder, so any worker answers with the same totals. Without
that variable (``create_app()`` in a test, a server started without our launchers)
the values live in this process and /metrics reports this process alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from app import metrics_files

log = logging.getLogger("app.metrics")

DURATION = "http_server_request_duration_seconds"
IN_FLIGHT = "http_server_active_requests"
LABELS = ("http_request_method", "http_route", "http_response_status_code")
# OpenTelemetry's advised boundaries for http.server.request.duration.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# Any other method is counted as _OTHER (OpenTelemetry's word), so a client cannot
# add label values; an unmatched path has the route "" (no route), never its path.
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
OTHER_METHOD = "_OTHER"
NO_ROUTE = ""
ROUTE_KEY = "app.route"  # the environ key the request writes its URL rule to

duration = Histogram(DURATION, "Duration of HTTP server requests.", LABELS, buckets=BUCKETS)
# livesum: the workers alive now, summed; a dead worker's share goes with it.
in_flight = Gauge(IN_FLIGHT, "HTTP server requests in flight.", multiprocess_mode="livesum")


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


def route_label(environ: dict[str, Any]) -> str:
    return environ.get(ROUTE_KEY, NO_ROUTE)


class RoutedRequest(Request):
    """Flask's request, which also leaves its URL rule in the environ: the WSGI layer reads
    it there after the response, when the request object is gone."""

    _rule = None

    @property
    def url_rule(self):  # type: ignore[override]
        return self._rule

    @url_rule.setter
    def url_rule(self, rule) -> None:
        self._rule = rule
        self.environ[ROUTE_KEY] = NO_ROUTE if rule is None else rule.rule


class RequestMetrics:
    """What the app's WSGI layer (app/middleware.py) calls around each request."""

    def __init__(self) -> None:
        # The labelled children, by label values: bounded (methods x rules x statuses),
        # and a dict lookup is cheaper than Histogram.labels() each time.
        self._children: dict[tuple[str, str, int], Any] = {}
        self._failed = False

    def started(self) -> None:
        try:
            in_flight.inc()
        except Exception:  # noqa: BLE001 - as below
            self._failed_once()

    def finished(self, environ: dict[str, Any], status: int, seconds: float) -> None:
        try:
            in_flight.dec()
            # Keyed by the label, not the raw method: a client's made-up methods are one key.
            method = method_label(environ.get("REQUEST_METHOD", ""))
            key = (method, route_label(environ), status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = duration.labels(method, key[1], str(status))
            child.observe(seconds)
        except Exception:  # noqa: BLE001 - a full disk must not fail the request it measured
            self._failed_once()

    def _failed_once(self) -> None:
        if not self._failed:
            self._failed = True
            log.exception("metrics: a request could not be recorded (logged once)")


class WorkerProcesses:
    """CPU, memory, open files and start time of each live worker, labelled ``pid``.

    prometheus_client's ProcessCollector reports only the process that answers, so in
    multiprocess mode it is read for every worker whose files are in the folder
    (Linux /proc; elsewhere nothing). The master process is not among them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for pid in metrics_files.live_pids(self.folder):
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for s in family.samples:
                    into.add_sample(s.name, {**s.labels, "pid": str(pid)}, s.value)
        return merged.values()


def _registry() -> tuple[CollectorRegistry, Path | None]:
    folder = os.environ.get(metrics_files.VARIABLE)
    if not folder:
        return REGISTRY, None  # one process: prometheus_client's defaults, process metrics too
    registry = CollectorRegistry()
    MultiProcessCollector(registry, folder)
    PlatformCollector(registry=registry)
    registry.register(WorkerProcesses(Path(folder)))
    return registry, Path(folder)


def register_metrics(app: Flask) -> None:
    registry, folder = _registry()
    app.request_class = RoutedRequest
    app.extensions["request_metrics"] = RequestMetrics()
    page = Blueprint("metrics", __name__)

    @page.get("/metrics")
    def metrics() -> Response:
        if folder is None:
            body = generate_latest(registry)
        else:
            with metrics_files.locked(folder, shared=True):  # no fold half seen
                body = generate_latest(registry)
        return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)

    app.register_blueprint(page)
