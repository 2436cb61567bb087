"""The app's pages and endpoints, as blueprints."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, render_template, request

from app import lifecycle
from app.security import request_id

pages = Blueprint("pages", __name__)
health = Blueprint("health", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def serving_launcher() -> str:
    """The launcher serving this request: the server names itself in SERVER_SOFTWARE."""
    from launchers.registry import launcher_for_server_software

    software = request.environ.get("SERVER_SOFTWARE", "")
    return launcher_for_server_software(software) or current_app.config.get("LAUNCHER", "unknown")


@pages.get("/")
def index():
    return render_template(
        "index.html", launcher=serving_launcher(), env=current_app.config["APP_ENV"]
    )


@health.get("/healthz")
def healthz():
    """Liveness: no I/O, so it answers whenever the process can."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    """Readiness: 503 from the moment shutdown begins, so load balancers stop sending."""
    if lifecycle.shutting_down():
        return jsonify(status="shutting down"), 503
    return jsonify(status="ready")


@api.get("/info")
def info():
    return jsonify(
        launcher=serving_launcher(),
        env=current_app.config["APP_ENV"],
        scheme=request.scheme,
        host=request.host,
        remote_addr=request.remote_addr,
        request_id=request_id(),
        trusted_proxy_hops=current_app.config.get("TRUSTED_PROXY_HOPS", 0),
    )


@api.post("/echo")
def echo():
    # force=True: any content type; a body that is not JSON raises BadRequest (400),
    # one over MAX_CONTENT_LENGTH raises RequestEntityTooLarge (413).
    return jsonify(received=request.get_json(force=True))


def register_blueprints(app: Flask) -> None:
    for blueprint in (pages, health, api):
        app.register_blueprint(blueprint)
