"""The app's pages and endpoints, as blueprints."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template, request

from app import lifecycle
from app.config import settings_of
from app.security import request_id
from settings.registry import launcher_for_server_software

pages = Blueprint("pages", __name__)
health = Blueprint("health", __name__)
api = Blueprint("api", __name__, url_prefix="/api")


def serving_launcher() -> str:
    """The launcher serving this request: the server names itself in SERVER_SOFTWARE."""
    software = request.environ.get("SERVER_SOFTWARE", "")
    return launcher_for_server_software(software) or settings_of().launcher


@pages.get("/")
def index():
    return render_template("index.html", launcher=serving_launcher(), env=settings_of().env)


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
        env=settings_of().env,
        scheme=request.scheme,
        host=request.host,
        remote_addr=request.remote_addr,
        request_id=request_id(),
        trusted_proxy_hops=settings_of().proxy_hops,
    )


@api.post("/echo")
def echo():
    # force=True: any content type; a body that is not JSON raises BadRequest (400),
    # one over MAX_CONTENT_LENGTH raises RequestEntityTooLarge (413).
    return jsonify(received=request.get_json(force=True))


def register_blueprints(app: Flask) -> None:
    for blueprint in (pages, health, api):
        app.register_blueprint(blueprint)
