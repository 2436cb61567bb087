"""Proxy trust, HSTS, cookies, the page's CSP and the debugger, on real production servers.

The security headers every response carries are checked for every launcher in
tests/test_contract.py. Two servers per launcher, shared by the tests: one
trusting no proxy, one trusting one hop.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from tests.live import PRODUCTION_LAUNCHERS, production_env, serve_app_args, statuses
from tests.support import free_port, get, raw_exchange, request, running

# Each test starts real servers: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


@pytest.fixture(scope="module", params=PRODUCTION_LAUNCHERS)
def launcher(request):
    return request.param


@contextlib.contextmanager
def serving(launcher: str, **extra) -> Iterator[int]:
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=1, **extra)
    with running(serve_app_args("tests.apps.session:app"), env, port):
        yield port


@pytest.fixture(scope="module")
def direct(launcher) -> Iterator[int]:
    """The port of a server that trusts no proxy."""
    with serving(launcher) as port:
        yield port


@pytest.fixture(scope="module")
def behind_a_proxy(launcher) -> Iterator[int]:
    """The port of a server that trusts one proxy hop."""
    with serving(launcher, TRUSTED_PROXY_HOPS=1) as port:
        yield port


def test_the_index_page_satisfies_its_content_security_policy(direct):
    r = get(direct, "/")
    page = r.text
    # default-src 'none'; style-src 'self': no inline script, style or handler attribute,
    # and nothing loaded from another origin.
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert not re.search(r"\son[a-z]+=", page)
    assert not re.search(r"""(?:src|href)=["']https?://""", page)
    assert "style-src 'self'" in r.headers["content-security-policy"]


def test_forwarded_headers_are_ignored_unless_proxy_hops_are_trusted(direct):
    r = get(direct, "/api/info", headers=FORWARDED)
    assert r.json()["scheme"] == "http" and r.json()["remote_addr"] == "127.0.0.1"
    assert "strict-transport-security" not in r.headers


def test_hsts_behind_one_trusted_proxy_that_says_https(behind_a_proxy):
    behind = get(behind_a_proxy, "/api/info", headers=FORWARDED)
    plain = get(behind_a_proxy, "/api/info", headers={"X-Forwarded-Proto": "http"})
    assert behind.json()["scheme"] == "https" and behind.json()["remote_addr"] == "203.0.113.9"
    assert behind.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers


def test_a_trusted_proxy_is_trusted_for_x_forwarded_proto_only(behind_a_proxy):
    """What ProxyFix reads, and nothing gunicorn would read on top of it."""
    port = behind_a_proxy
    other = get(port, "/", headers={"X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"})
    script_name = raw_exchange(
        port, b"GET / HTTP/1.1\r\nHost: x\r\nSCRIPT_NAME: /evil\r\nConnection: close\r\n\r\n"
    )
    assert other.status == 200 and "strict-transport-security" not in other.headers
    assert statuses(script_name) == [200] and b"/evil" not in script_name


def test_session_cookie_is_httponly_lax_and_secure_only_over_https(behind_a_proxy):
    port = behind_a_proxy
    plain = request("POST", port, "/api/login").headers["set-cookie"]
    https = request("POST", port, "/api/login", headers=FORWARDED).headers["set-cookie"]
    for cookie in (plain, https):
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert "httponly" in attributes and "samesite=lax" in cookie.lower()
    assert "secure" not in {a.strip().lower() for a in plain.split(";")}
    assert "secure" in {a.strip().lower() for a in https.split(";")}


@pytest.mark.parametrize(
    "path",
    [
        "/?__debugger__=yes&cmd=resource&f=style.css",
        "/?__debugger__=yes&cmd=printpin&s=x",
        "/console",
    ],
)
def test_debugger_urls_are_404_in_production(direct, path):
    r = get(direct, path)
    assert r.status == 404
    assert "debugger" not in r.text.lower() and "console" not in r.text.lower()
