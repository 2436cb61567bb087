"""Deploys that lose no request: rolling restarts behind the real nginx, and gunicorn's HUP.

Four clients send GET /api/info and POST /api/echo, each on a new connection,
through the shipped nginx site (its upstream given two instances), while each
instance in turn is stopped with SIGTERM and started again, as
``systemctl restart flask-app@PORT`` does; ten rounds in a row. Before, a POST
that had reached a stopping instance's listen queue got 502 (nginx: "recv()
failed (104: Connection reset by peer)"); every request must now be answered.
The load is bounded in count (ROUNDS, each step with its own timeout) and time (the
test's timeout) and stops with the restarts; only loopback addresses.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.live import PRODUCTION_LAUNCHERS, production_env
from tests.nginx_support import nginx_in_front
from tests.support import (
    PYTHON,
    ROOT,
    Server,
    clean_env,
    copy_project,
    free_port,
    get,
    request,
    running,
)

pytestmark = pytest.mark.slow

CLIENTS = 4
ROUNDS = 10
# Each stop and start is bounded (20 s each); the whole test by its timeout mark.
WHY = "rolling restarts go through the real nginx"


class Load:
    """CLIENTS threads sending GET and POST through ``port`` until stopped; outcomes counted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def _run(self, client: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            body = json.dumps({"client": client, "n": n}).encode()
            try:
                if n % 2:
                    response = get(self.port, "/api/info", timeout=10)
                    ok = response.status == 200
                else:
                    response = request(
                        "POST",
                        self.port,
                        "/api/echo",
                        body=body,
                        headers={"Content-Type": "application/json"},
                        timeout=10,
                    )
                    ok = response.status == 200 and response.json()["received"] == json.loads(body)
                outcome = f"{'GET' if n % 2 else 'POST'} {response.status}"
            except OSError as error:
                ok, outcome = False, f"{'GET' if n % 2 else 'POST'} {type(error).__name__}"
            with self._lock:
                self.outcomes[outcome] += 1
                if not ok:
                    self.failures.append(outcome)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    @property
    def answered(self) -> int:
        return sum(self.outcomes.values()) - len(self.failures)


@contextmanager
def instances(launcher: str, count: int, **extra: object) -> Iterator[list[Server]]:
    """``count`` instances of ``python main.py`` on free ports, each replaced in place by
    ``restart``; all stopped at the end."""
    servers: list[Server] = []
    try:
        for _ in range(count):
            servers.append(start(launcher, free_port(), **extra))
        yield servers
    finally:
        for server in servers:
            server.close()


def start(launcher: str, port: int, cwd: Path = ROOT, **extra: object) -> Server:
    env = production_env(launcher, port, WEB_CONCURRENCY=2, TRUSTED_PROXY_HOPS=1, **extra)
    return Server([PYTHON, "main.py"], env, port, cwd=cwd).start().wait_ready(path="/readyz")


def restart(servers: list[Server], i: int, launcher: str, **extra: object) -> float:
    """Stop instance ``i`` with SIGTERM, wait for it to exit 0, start it again; its stop time."""
    old = servers[i]
    stopping = time.monotonic()
    old.signal(signal.SIGTERM)
    code = old.wait_exit(20)
    stopped = time.monotonic() - stopping
    log = old.stdout + old.stderr
    old.close()
    assert code == 0, f"{launcher} exited {code}\n{log[-2000:]}"
    servers[i] = start(launcher, old.port, cwd=old.cwd, **extra)
    return stopped


@pytest.mark.timeout(300)
@pytest.mark.parametrize("launcher", PRODUCTION_LAUNCHERS)
def test_rolling_restarts_behind_nginx_lose_no_request(launcher):
    with (
        instances(launcher, 2) as servers,
        nginx_in_front([s.port for s in servers], WHY) as (port, prefix),
    ):
        stops: list[float] = []
        with Load(port) as load:
            for _ in range(ROUNDS):
                for i in range(len(servers)):
                    stops.append(restart(servers, i, launcher))
            time.sleep(0.2)  # the requests under way when the last instance came back
        # A refused connection is what a stopped instance should give: nginx retries it.
        errors = [
            line
            for line in (prefix / "error.log").read_text(errors="replace").splitlines()
            if "[error]" in line and "(111: Connection refused)" not in line
        ]
    rounds = len(stops) // 2
    summary = (
        f"{launcher}: {rounds} rounds, {load.answered} answered, outcomes {dict(load.outcomes)}, "
        f"stops {min(stops):.2f}-{max(stops):.2f} s"
    )
    print(summary)
    report = summary + "\nnginx:\n" + "\n".join(errors[-20:])
    assert rounds == ROUNDS, report
    assert not load.failures, report
    assert load.answered > 0, report


def test_the_rolling_restart_script_behind_nginx_loses_no_request(tmp_path):
    """deploy/rolling-restart.sh as docs/zero-downtime.md runs it, with a stand-in for
    systemctl (tests/apps/supervise.py) around two gunicorn instances."""
    ports = [free_port(), free_port()]
    pid_files = [tmp_path / f"{port}.pid" for port in ports]
    with ExitStack() as stack:
        for port, pid_file in zip(ports, pid_files, strict=True):
            env = production_env("gunicorn", port, WEB_CONCURRENCY=2, TRUSTED_PROXY_HOPS=1)
            supervised = [PYTHON, "-m", "tests.apps.supervise", str(pid_file)]
            stack.enter_context(running(supervised, env, port))
        nginx_port, _ = stack.enter_context(nginx_in_front(ports, WHY))
        before = [p.read_text() for p in pid_files]
        with Load(nginx_port) as load:
            time.sleep(0.5)  # load under way (not an assertion)
            result = subprocess.run(
                ["sh", "deploy/rolling-restart.sh", *map(str, ports)],
                env=clean_env(
                    RESTART_COMMAND=f"{PYTHON} -m tests.apps.supervise restart {tmp_path}/%s.pid"
                ),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            time.sleep(0.5)  # requests under way when the last instance came back
        after = [p.read_text() for p in pid_files]
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("restarted and ready") == 2, result.stdout
    assert all(a != b for a, b in zip(before, after, strict=True)), (before, after)
    assert not load.failures, dict(load.outcomes)
    assert load.answered > 0


def test_the_rolling_restart_script_stops_at_an_instance_that_is_not_ready(tmp_path):
    calls = tmp_path / "calls"
    nothing_there = free_port()
    result = subprocess.run(
        ["sh", "deploy/rolling-restart.sh", str(nothing_there), "8001"],
        env=clean_env(RESTART_COMMAND=f"echo %s >> {calls}", READY_TIMEOUT=1),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"port {nothing_there} is not ready after 1s" in result.stderr, result.stderr
    assert calls.read_text().split() == [str(nothing_there)]  # 8001 was left alone


RELOADERS = {
    "python main.py (gunicorn)": ("gunicorn", [PYTHON, "main.py"]),
    "gunicorn -c gunicorn_config.py": (
        "gunicorn",
        [PYTHON, "-m", "gunicorn", "-c", "gunicorn_config.py", "wsgi:app"],
    ),
    "python main.py (granian)": ("granian", [PYTHON, "main.py"]),
}


@pytest.mark.parametrize("how", RELOADERS)
def test_hup_serves_the_code_now_on_disk_and_loses_no_request(how, tmp_path):
    launcher, command = RELOADERS[how]
    project = copy_project(tmp_path / "project")
    template = project / "app" / "templates" / "index.html"
    views = project / "app" / "views.py"
    port = free_port()
    env = production_env(launcher, port, WEB_CONCURRENCY=2)
    with running(command, env, port, cwd=project) as server:
        assert "reloaded" not in get(port, "/api/info").json()
        with Load(port) as load:
            time.sleep(1.0)  # load under way (not an assertion)
            template.write_text(template.read_text().replace("</h1>", " Served after HUP.</h1>"))
            source = views.read_text()
            views.write_text(
                source.replace(
                    "request_id=request_id(),", "reloaded=True, request_id=request_id(),"
                )
            )
            server.signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            reloaded = False
            while not reloaded and time.monotonic() < deadline:  # bounded: new workers start
                reloaded = get(port, "/api/info").json().get("reloaded") is True
                time.sleep(0.1)
            time.sleep(1.0)  # the old workers' last requests finish (not an assertion)
        page = get(port, "/").text
        log = server.stdout + server.stderr
    print(how, dict(load.outcomes))
    assert reloaded, f"{how}: the edited views.py was never served\n{log[-3000:]}"
    assert "Served after HUP." in page, page
    assert not load.failures, (how, dict(load.outcomes), log[-3000:])
    assert load.answered > 0
