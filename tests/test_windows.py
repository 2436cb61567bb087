"""The waitress path as Windows runs it: production with auto, waitress chosen, a real start.

On Windows (the CI's Windows job) auto picks waitress by itself; elsewhere the test names
it. Plain subprocess calls: process groups and preexec_fn do not exist on Windows.
"""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support import PYTHON, ROOT, SECRET, clean_env, free_port, get


def test_production_serves_with_waitress(tmp_path):
    port = free_port()
    launcher = "auto" if sys.platform.startswith("win") else "waitress"
    env = clean_env(
        APP_ENV="production", SECRET_KEY=SECRET, APP_LAUNCHER=launcher, HOST="127.0.0.1", PORT=port
    )
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([PYTHON, "main.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        info = None
        while info is None and time.monotonic() < deadline and server.poll() is None:
            try:
                info = get(port, "/api/info", timeout=2).json()
            except OSError:
                time.sleep(0.1)
        assert info is not None, (tmp_path / "server.log").read_text(errors="replace")
        assert info["launcher"] == "waitress" and info["env"] == "production"
        assert get(port, "/healthz").json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
