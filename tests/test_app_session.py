"""The session, as Flask documents it, with a serializer the app builds only when needed.

Set, read, modified, untouched: the cookie is written only when the session
changed, ``Vary: Cookie`` only once it was accessed, and an untouched session
adds neither. Cookies are HttpOnly and SameSite=Lax, Secure over HTTPS.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask, jsonify, session

from app import create_app


@pytest.fixture
def app() -> Flask:
    app = create_app({"APP_ENV": "testing"})

    @app.post("/login")
    def login():
        session["user"] = "someone"
        return jsonify(ok=True)

    @app.post("/remember")
    def remember():
        session.permanent = True
        session["user"] = "someone"
        return jsonify(ok=True)

    @app.get("/whoami")
    def whoami():
        return jsonify(user=session.get("user"))

    @app.post("/logout")
    def logout():
        session.clear()
        return jsonify(ok=True)

    return app


def attributes(set_cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}


def test_setting_the_session_writes_the_cookie_with_its_attributes(client):
    r = client.post("/login")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Cookie" in r.headers["Vary"]
    assert {"httponly", "samesite", "path"} <= attributes(cookie)
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes(cookie) and "expires" not in attributes(cookie)


def test_the_cookie_is_secure_over_https(client):
    cookie = client.post("/login", base_url="https://localhost").headers["Set-Cookie"]
    assert "secure" in attributes(cookie)


def test_the_session_is_read_back_and_not_written_again_unless_modified(client):
    client.post("/login")
    r = client.get("/whoami")
    assert r.json == {"user": "someone"}
    assert "Set-Cookie" not in r.headers  # read, not modified
    assert "Cookie" in r.headers["Vary"]  # but accessed: the answer depends on the cookie


def test_an_untouched_session_adds_no_cookie_and_no_vary(client):
    for r in (client.get("/healthz"), client.get("/missing"), client.post("/api/echo", json=1)):
        assert "Set-Cookie" not in r.headers and "Vary" not in r.headers, r.headers
    client.post("/login")
    r = client.get("/healthz")  # a session cookie sent, the session never touched
    assert "Set-Cookie" not in r.headers and "Vary" not in r.headers


def test_a_forged_or_stale_cookie_is_an_empty_session(client):
    client.set_cookie("session", "forged.value.sig")
    assert client.get("/whoami").json == {"user": None}


def test_a_permanent_session_has_an_expiry(app, client):
    app.permanent_session_lifetime = timedelta(days=3)
    cookie = client.post("/remember").headers["Set-Cookie"]
    assert "expires" in attributes(cookie)
    assert client.get("/whoami").json == {"user": "someone"}


def test_clearing_the_session_deletes_the_cookie(client):
    client.post("/login")
    r = client.post("/logout")
    assert "session=;" in r.headers["Set-Cookie"] and "Cookie" in r.headers["Vary"]
    assert client.get("/whoami").json == {"user": None}


def test_a_new_secret_key_signs_with_the_new_key(app, client):
    client.post("/login")
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "a-new-secret-key-0123456789abcdef"
    assert client.get("/whoami").json == {"user": "someone"}  # read with the fallback
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/whoami").json == {"user": None}  # the old key no longer trusted
