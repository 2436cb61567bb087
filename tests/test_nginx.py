"""deploy/nginx/flask-app.conf, run by the real nginx in front of gunicorn on loopback.

The shipped file is included as it is, with exactly two lines rewritten for the test:
``listen 80;`` becomes a free port on 127.0.0.1, and the upstream's server 127.0.0.1:8000
becomes the free port gunicorn listens on. The client connects from 127.0.0.2 (still loopback), so
its address can be told apart from nginx's own 127.0.0.1 in what the app reports.
"""

from __future__ import annotations

import http.client
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from settings import BY_ENV
from tests.nginx_support import SITE, nginx_in_front, rewrite_site
from tests.support import (
    PYTHON,
    SECRET,
    Response,
    clean_env,
    free_port,
    running,
)

# Each test starts real servers or tools: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

CLIENT = "127.0.0.2"  # a loopback address that is not nginx's
FORGED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "1234",
    "X-Forwarded-Prefix": "/evil",
}


@contextmanager
def proxied(hops: int) -> Iterator[tuple[int, int]]:
    """gunicorn on 127.0.0.1 with TRUSTED_PROXY_HOPS=hops, nginx in front: (nginx, app) ports."""
    app_port = free_port()
    metrics_dir = Path(tempfile.mkdtemp(prefix="nginx-test-metrics-"))
    env = clean_env(
        HOST="127.0.0.1",
        PORT=app_port,
        APP_ENV="production",
        SECRET_KEY=SECRET,
        TRUSTED_PROXY_HOPS=hops,
        WEB_CONCURRENCY=1,
        METRICS=1,  # for test_metrics_are_not_served_through_nginx
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
    )
    gunicorn = [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
    try:
        with (
            running(gunicorn, env, app_port),
            nginx_in_front(app_port, "the reverse-proxy tests run the real nginx") as (port, _),
        ):
            yield port, app_port
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def from_client(
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """A request from 127.0.0.2, so the client's address differs from nginx's."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(CLIENT, 0))
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def trusting_proxy() -> Iterator[tuple[int, int]]:
    with proxied(hops=1) as ports:
        yield ports


def test_the_shipped_site_differs_only_in_the_two_ports():
    original = SITE.read_text().splitlines()
    rewritten = rewrite_site(SITE.read_text(), 18080, 18000).splitlines()
    changed = [(a, b) for a, b in zip(original, rewritten, strict=True) if a != b]
    assert [a.strip() for a, _ in changed] == ["server 127.0.0.1:8000 max_fails=0;", "listen 80;"]


def test_metrics_are_not_served_through_nginx(trusting_proxy):
    nginx_port, app_port = trusting_proxy
    assert from_client(nginx_port, "/metrics").status == 404
    assert from_client(nginx_port, "/metrics/").status == 404  # the app's 404, no such route
    direct = http.client.HTTPConnection("127.0.0.1", app_port, timeout=10)
    try:
        direct.request("GET", "/metrics")
        assert direct.getresponse().status == 200  # the scraper, on the app's own port
    finally:
        direct.close()


def test_body_limit_equals_the_apps(trusting_proxy):
    match = re.search(r"^\s*client_max_body_size\s+(\d+)([kKmM]?);", SITE.read_text(), re.M)
    assert match, "client_max_body_size is not set"
    size = int(match[1]) * {"": 1, "k": 1024, "m": 1024 * 1024}[match[2].lower()]
    assert size == BY_ENV["MAX_CONTENT_LENGTH"].default

    nginx_port, _ = trusting_proxy
    headers = {"Content-Type": "application/json"}
    padding = size - len(b'{"x": ""}')
    exactly = b'{"x": "' + b"a" * padding + b'"}'
    assert len(exactly) == size
    accepted = from_client(nginx_port, "/api/echo", method="POST", headers=headers, body=exactly)
    assert accepted.status == 200, accepted.text[:300]
    assert len(accepted.json()["received"]["x"]) == padding

    too_big = from_client(
        nginx_port, "/api/echo", method="POST", headers=headers, body=exactly + b" "
    )
    assert too_big.status == 413
    assert too_big.headers["content-type"].startswith("application/json")
    assert too_big.json()["status"] == 413


def test_trusted_proxy_reports_the_client_and_its_host(trusting_proxy):
    nginx_port, _ = trusting_proxy
    host = f"app.example.test:{nginx_port}"
    info = from_client(nginx_port, "/api/info", headers={"Host": host}).json()
    assert info["launcher"] == "gunicorn" and info["env"] == "production"
    assert info["remote_addr"] == CLIENT  # not nginx's 127.0.0.1
    assert info["host"] == host
    assert info["scheme"] == "http"


def test_forged_forwarded_headers_are_never_believed(trusting_proxy):
    nginx_port, _ = trusting_proxy
    host = f"app.example.test:{nginx_port}"
    response = from_client(nginx_port, "/api/info", headers={"Host": host, **FORGED})
    info = response.json()
    assert info["remote_addr"] == CLIENT
    assert info["host"] == host
    assert info["scheme"] == "http"
    assert "strict-transport-security" not in response.headers

    page = from_client(nginx_port, "/", headers={"Host": host, **FORGED})
    assert page.status == 200
    links = re.findall(r'href="([^"]*)"', page.text)
    assert "/healthz" in links and not any(link.startswith("/evil") for link in links)


def test_forged_ssl_headers_do_not_make_the_request_https(trusting_proxy):
    # gunicorn's own secure_scheme_headers, which nginx must drop: passed on, they
    # contradict nginx's X-Forwarded-Proto and gunicorn refuses the request (400).
    nginx_port, _ = trusting_proxy
    for forged in ({"X-Forwarded-Ssl": "on"}, {"X-Forwarded-Protocol": "ssl"}):
        response = from_client(nginx_port, "/api/info", headers=forged)
        assert response.status == 200, (forged, response.status, response.text[:200])
        assert response.json()["scheme"] == "http", forged
        assert "strict-transport-security" not in response.headers


def test_without_trusted_hops_nothing_forwarded_is_trusted():
    with proxied(hops=0) as (nginx_port, app_port):
        host = f"app.example.test:{nginx_port}"
        info = from_client(nginx_port, "/api/info", headers={"Host": host, **FORGED}).json()
        assert info["remote_addr"] == "127.0.0.1"  # nginx, the only peer the app can see
        assert info["host"] == "flask-app"  # nginx's Host to the upstream: the upstream's name
        assert info["scheme"] == "http"
        assert info["trusted_proxy_hops"] == 0
