"""The real app plus endpoints that take long, for the worker-timeout and drain tests.

/hang/cpu?seconds=N spins the CPU: under gevent nothing else in the worker runs,
not even its heartbeat, which is what a hung request looks like to gunicorn.
/hang/sleep?seconds=N sleeps (cooperatively under gevent): a slow request.
"""

from __future__ import annotations

import time

from flask import jsonify, request

from app import create_app

app = create_app()


def _seconds() -> float:
    return min(float(request.args.get("seconds", "60")), 120.0)


@app.get("/hang/cpu")
def hang_cpu():
    end = time.monotonic() + _seconds()
    while time.monotonic() < end:
        pass
    return jsonify(done=True)


@app.get("/hang/sleep")
def hang_sleep():
    time.sleep(_seconds())
    return jsonify(done=True)
