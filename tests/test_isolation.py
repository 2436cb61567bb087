"""The suite's result does not depend on a ``.env`` in the checkout or on the shell.

A fork's first steps are to copy ``.env.example`` to ``.env`` and set it for
production; the tests must go on passing. This runs the quick part of the
suite (``-m "not slow"``) in a copy of the project that has such a ``.env``,
from a shell that sets some of the same variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support import PYTHON, ROOT, SECRET

PRODUCTION_DOTENV = f"""
APP_ENV=production
SECRET_KEY={SECRET}
APP_LAUNCHER=waitress
LOG_LEVEL=error
LOG_FORMAT=json
PORT=80
WEB_CONCURRENCY=7
TRUSTED_PROXY_HOPS=2
MAX_CONTENT_LENGTH=10
"""
SHELL = {"APP_ENV": "production", "HOST": "::1", "LOG_FORMAT": "json", "MAX_CONTENT_LENGTH": "10"}


@pytest.mark.slow
@pytest.mark.timeout(600)  # the quick suite, run whole inside this test
def test_the_quick_suite_passes_beside_a_production_dotenv(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".env", "*.pyc", ".*_cache"),
    )
    (project / ".env").write_text((ROOT / ".env.example").read_text() + PRODUCTION_DOTENV)
    env = {k: v for k, v in os.environ.items() if k != "ENV_FILE"} | SHELL
    result = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "-x"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    summary = result.stdout.strip().splitlines()[-1:] or [""]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary[0] and "failed" not in summary[0], summary
