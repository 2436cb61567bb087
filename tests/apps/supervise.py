"""A stand-in for systemd in the tests: keeps ``python main.py`` running, and restarts it.

    python -m tests.apps.supervise PIDFILE            # run main.py, again each time it exits 0
    python -m tests.apps.supervise restart PIDFILE    # as `systemctl restart`: SIGTERM, and
                                                      # return once the next one has started

The supervisor does what ``Restart=always`` does for one instance, and the second
form what ``systemctl restart flask-app@PORT`` does for deploy/rolling-restart.sh
(its RESTART_COMMAND): the old process stopped and gone, the new one started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def supervise(pid_file: Path) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the test's own stop
    while True:
        server = subprocess.Popen([sys.executable, "main.py"])
        written = pid_file.with_suffix(".new")
        written.write_text(str(server.pid))
        written.replace(pid_file)  # whole, never read half written
        if server.wait() != 0:  # a failing instance is not restarted in a loop
            return server.returncode


def restart(pid_file: Path, limit: float = 20.0) -> int:
    old = pid_file.read_text()
    os.kill(int(old), signal.SIGTERM)
    deadline = time.monotonic() + limit
    while pid_file.read_text() == old:  # rewritten once the old one has exited 0
        if time.monotonic() > deadline:
            print(f"supervise: {old} did not restart within {limit}s", file=sys.stderr)
            return 1
        time.sleep(0.02)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "restart":
        sys.exit(restart(Path(sys.argv[2])))
    sys.exit(supervise(Path(sys.argv[1])))
