"""The app's own cost per request, called in this process with no server at all.

Explains the middleware ratios: a server can only add to what the app costs.
Run in a subprocess (``python -m bench.inprocess``) so that the production
settings and logging it configures stay out of the bench's own process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/healthz",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "5000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:5000",
    "HTTP_USER_AGENT": "bench",
    "wsgi.url_scheme": "http",
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}


def per_request_us(app: Callable, seconds: float) -> float:
    def start_response(status, headers, exc_info=None):
        return None

    def once() -> None:
        environ = dict(ENVIRON)
        environ["wsgi.input"] = io.BytesIO()
        environ["wsgi.errors"] = sys.stderr
        body = app(environ, start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()

    for _ in range(200):
        once()
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(200):
            once()
        n += 200
    return round((time.perf_counter() - began) / n * 1e6, 1)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    from app import create_app, logs
    from bench.apps import flask_app, wsgi_app
    from launchers.settings import load_settings

    ours = create_app(load_settings().flask_config())
    quiet = create_app(load_settings().flask_config())
    # "Without the access log": the app's hooks that time and write it taken out.
    hooks = {getattr(logs, "_start_timer", None), getattr(logs, "_log_access", None)}
    for registry in (quiet.before_request_funcs, quiet.after_request_funcs):
        for key, funcs in registry.items():
            registry[key] = [f for f in funcs if f not in hooks]
    access = getattr(logs, "ACCESS", logging.getLogger("app.access"))
    apps = {
        "raw_wsgi_us": wsgi_app,
        "bare_flask_us": flask_app,
        "ours_us": ours,
        "ours_without_access_log_us": quiet,
    }
    samples: dict[str, list[float]] = {name: [] for name in apps}
    rounds = 5
    with open(os.devnull, "w") as devnull:
        for handler in logging.getLogger().handlers:  # the access log line is written, not kept
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        for _ in range(rounds):  # interleaved, so that a drift of the machine hits all alike
            for name, app in apps.items():
                access.disabled = app is quiet
                samples[name].append(per_request_us(app, seconds / rounds))
    print(json.dumps({name: statistics.median(v) for name, v in samples.items()}))


if __name__ == "__main__":
    main()
