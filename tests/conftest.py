"""Fixtures in the style of Flask's tutorial: ``app`` and ``client`` from explicit settings.

The tests never read the developer's environment or ``.env``: the app is built
from the settings given here, and every test runs with the settings' variables
removed from the process environment and ``ENV_FILE=none``
(tests/test_isolation.py runs the suite beside a production ``.env`` to show it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.support import OUR_VARIABLES, Sandbox, make_sandbox


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OUR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_FILE", "none")


@pytest.fixture
def app() -> Flask:
    return create_app({"APP_ENV": "testing"})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The project, runnable by uid 65534 (see tests.support.make_sandbox).

    Made directly under /tmp: pytest's own temporary folders are 0700.
    """
    base = Path(tempfile.mkdtemp(prefix="flask-starter-sandbox-"))
    try:
        yield make_sandbox(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
