"""The app factory, through Flask's test client (every create_app path)."""

from __future__ import annotations

import os

import pytest

from app import create_app, lifecycle
from app.config import settings_of
from settings import Context, load_settings
from settings.errors import ConfigError
from tests.support import SECRET


def test_create_app_reads_the_environment_without_an_argument(monkeypatch, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_FORMAT=json\n")
    monkeypatch.setenv("ENV_FILE", str(dotenv))
    monkeypatch.setenv("APP_ENV", "testing")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "1234")
    app = create_app()
    assert settings_of(app).env == "testing" and app.config["MAX_CONTENT_LENGTH"] == 1234
    assert settings_of(app).log_format == "json" and app.testing


def test_create_app_takes_a_settings_object():
    settings = load_settings(
        {"APP_ENV": "production", "SECRET_KEY": SECRET, "MAX_CONTENT_LENGTH": "10"},
        dotenv_path=None,
        context=Context(platform="linux", usable_cpus=lambda: 1),
    )
    app = create_app(settings)
    assert settings_of(app) is settings and app.config["SECRET_KEY"] == SECRET
    assert app.config["MAX_CONTENT_LENGTH"] == 10 and not app.debug


def test_a_test_configuration_reads_nothing_else(monkeypatch, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("APP_ENV=production\nMAX_CONTENT_LENGTH=10\n")
    monkeypatch.setenv("ENV_FILE", str(dotenv))
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "3")
    app = create_app({"APP_ENV": "testing", "LOG_LEVEL": "warning", "TESTING": False})
    settings = settings_of(app)
    assert (settings.env, settings.log_level, settings.proxy_hops) == ("testing", "warning", 0)
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert app.testing is False  # a key that names no setting is a Flask key, set last


def test_a_test_configuration_is_checked_like_the_environment():
    with pytest.raises(ConfigError, match="PORT='abc'"):
        create_app({"PORT": "abc"})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production"})


def test_index_names_launcher_and_environment(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "testing" in page and "/healthz" in page and "/api/info" in page


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_readiness_fails_once_shutdown_begins(client, monkeypatch):
    monkeypatch.setattr(lifecycle, "_shutting_down", type(lifecycle._shutting_down)())
    lifecycle.begin_shutdown()
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_info_has_no_secret(client):
    body = client.get("/api/info").json
    assert {"launcher", "env", "scheme", "host", "remote_addr"} <= set(body)
    assert "SECRET" not in repr(body).upper()


def test_echo(client):
    assert client.post("/api/echo", json={"a": [1, 2]}).json == {"received": {"a": [1, 2]}}
    bad = client.post("/api/echo", data=b"{not json", content_type="application/json")
    assert bad.status_code == 400 and "error" in bad.json
    plain = client.post("/api/echo", data=b"hello", content_type="text/plain")
    assert plain.status_code == 400 and "error" in plain.json


def test_body_over_the_limit_is_413_json(client):
    r = client.post("/api/echo", data=b"[" + b"1," * 600_000 + b"1]")
    assert r.status_code == 413 and r.json["status"] == 413


def test_not_found_is_json_under_api_and_html_elsewhere(client):
    api = client.get("/api/missing")
    assert api.status_code == 404 and api.json["error"] == "Not Found"
    page = client.get("/missing")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_method_not_allowed_keeps_allow_header(client):
    r = client.get("/api/echo")
    assert r.status_code == 405 and "POST" in r.headers["Allow"] and r.is_json


def test_unexpected_error_is_a_generic_500_without_traceback():
    app = create_app({"APP_ENV": "production", "SECRET_KEY": SECRET})

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret detail")

    r = app.test_client().get("/api/boom")
    assert r.status_code == 500 and "secret detail" not in r.get_data(as_text=True)
    assert "Traceback" not in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/info", "/missing", "/api/missing"])
def test_security_headers_on_every_response(client, path):
    h = client.get(path).headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert (
        h["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in h["Content-Security-Policy"]
    )
    assert h["Referrer-Policy"]
    assert "Strict-Transport-Security" not in h


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" in client.get("/", base_url="https://localhost").headers


@pytest.mark.parametrize("incoming", ["abc", "a" * 128, "req-1.2_3:4"])
def test_well_formed_request_id_is_echoed(client, incoming):
    assert (
        client.get("/healthz", headers={"X-Request-ID": incoming}).headers["X-Request-ID"]
        == incoming
    )


@pytest.mark.parametrize("incoming", ["", "a" * 129, "bad id", "<script>", "a\u00e9"])
def test_malformed_request_id_is_replaced(client, incoming):
    rid = client.get("/healthz", headers={"X-Request-ID": incoming}).headers["X-Request-ID"]
    assert rid != incoming and 8 <= len(rid) <= 128 and rid.isalnum()


def test_new_request_ids_are_32_hex_digits_and_not_repeated():
    from app.security import request_id_for

    ids = {request_id_for({}) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: gunicorn's and granian's workers")
def test_a_forked_worker_does_not_repeat_its_parents_request_ids():
    from app.security import request_id_for

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: its next id, then out at once, whatever happens
        try:
            os.write(write_end, request_id_for({}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as worker:
        workers_id = worker.read().decode()
    os.waitpid(pid, 0)
    assert len(workers_id) == 32 and workers_id != request_id_for({})


def test_forwarded_headers_ignored_unless_trusted():
    headers = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "example.com",
    }
    plain = create_app({"APP_ENV": "testing"}).test_client().get("/api/info", headers=headers).json
    assert plain["remote_addr"] == "127.0.0.1" and plain["scheme"] == "http"
    trusted = create_app({"APP_ENV": "testing", "TRUSTED_PROXY_HOPS": 1}).test_client()
    r = trusted.get("/api/info", headers=headers)
    assert r.json["remote_addr"] == "203.0.113.9" and r.json["scheme"] == "https"
    assert r.json["host"] == "example.com" and "Strict-Transport-Security" in r.headers
