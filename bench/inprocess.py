"""Cost per request with no server: a bare Flask app against the starter's, called directly.

    python -m bench.inprocess SECONDS RESULT_FILE

``measure()`` runs it in a subprocess with its stdout on /dev/null: the starter's
access log line is written there, as a server would write it, and the production
logging the starter configures stays out of the bench's own process.

The goal's pair is ``bare_flask_us`` and ``ours_us`` (every feature on, the access
line written). Three more explain the difference: the bare app with a SECRET_KEY
(what Flask's own signed-cookie session costs it), the starter with LOG_LEVEL
above info (what the access line costs), and the starter with METRICS on (what
each request's histogram costs, written to a multiprocess folder as under the
launchers). CPU time, not wall time, is counted: a
request preempted by another program is not charged the other program's time.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import apps, project
from bench.configs import PRODUCTION, server_env

ROUNDS = 9  # interleaved, so that a drift of the machine hits every app alike
GOAL = ("bare_flask_us", "ours_us")  # the in-process goal's pair; the others explain it
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


def call(app: Callable) -> None:
    """One request, its body read and closed, as a server would."""
    environ = dict(ENVIRON, **{"wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr})
    body = app(environ, lambda status, headers, exc_info=None: None)
    for _ in body:
        pass
    getattr(body, "close", lambda: None)()


def per_request_us(app: Callable, seconds: float) -> float:
    for _ in range(200):  # warm-up: caches, the first request's set-up
        call(app)
    count, began = 0, time.process_time()
    while time.process_time() - began < seconds:
        for _ in range(200):
            call(app)
        count += 200
    return (time.process_time() - began) / count * 1e6


def measure(seconds: float) -> dict[str, float]:
    """Median µs (of CPU) per request of each app, from a subprocess that runs ``main``."""
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "inprocess.json"
        out = subprocess.run(
            [sys.executable, "-m", "bench.inprocess", str(seconds), str(result_file)],
            env=server_env({"PROMETHEUS_MULTIPROC_DIR": tmp}),  # METRICS as the launchers run it
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,  # where the starter's access log lines go
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"bench.inprocess failed:\n{out.stderr}")
        return json.loads(result_file.read_text())


def main(seconds: float, result_file: Path) -> None:
    ours = project.starter_app(PRODUCTION)  # LOG_LEVEL info: the access line is written
    measured = project.starter_app({**PRODUCTION, "METRICS": "1"})
    # (app, the root logger's level while it runs): logging is one per process, so the
    # starter without its access line is the same app with the level raised.
    tested = {
        "bare_flask_us": (apps.flask_app, logging.INFO),
        "ours_us": (ours, logging.INFO),
        "bare_flask_sessions_us": (apps.flask_app_with_sessions, logging.INFO),
        "ours_no_access_log_us": (ours, logging.WARNING),
        "ours_metrics_us": (measured, logging.INFO),
    }
    samples: dict[str, list[float]] = {name: [] for name in tested}
    for _ in range(ROUNDS):
        for name, (app, level) in tested.items():
            logging.getLogger().setLevel(level)
            samples[name].append(per_request_us(app, seconds / ROUNDS))
    medians = {name: round(statistics.median(v), 1) for name, v in samples.items()}
    result_file.write_text(json.dumps(medians))


if __name__ == "__main__":
    main(float(sys.argv[1]), Path(sys.argv[2]))
