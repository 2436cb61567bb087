"""Every shell command the docs give works as written, or says why it cannot run here.

tests/docs_commands.py finds each command in README.md, docs/, deploy/ and the comments of
the files people copy, and holds the three lists; each command is in exactly one:

- ``RUN``: run here, as written, in a copy of the project; only a port a test cannot take
  (5000, 80) is replaced by a free one;
- ``RUN_ELSEWHERE_IN_THE_SUITE``: what it does needs this machine changed (a file in /etc,
  setcap, port 80, a Docker bridge), so the test named beside it does the same on a copy;
- ``ANOTHER_PLATFORM``: it needs a platform this machine is not (Heroku, Fly.io, a
  Kubernetes cluster, Windows, a real systemd as PID 1), with the reason.

A command in none of them, or an entry no doc gives any more, fails here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs_commands import (
    ANOTHER_PLATFORM,
    EXITS_0,
    FRESH_VENV,
    METRICS_BLOCK,
    README_RUN,
    RUN,
    RUN_ELSEWHERE_IN_THE_SUITE,
    SERVERS,
    commands,
)
from tests.support import (
    ROOT,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
)

FOUND = commands()


def test_every_command_the_docs_give_is_run_or_said_to_need_another_platform():
    placed = [RUN, RUN_ELSEWHERE_IN_THE_SUITE, ANOTHER_PLATFORM]
    unplaced = {c: where for c, where in FOUND.items() if not any(c in p for p in placed)}
    assert not unplaced, "commands in the docs with no place in this file:\n" + "\n".join(
        f"  {c!r}  ({', '.join(w)})" for c, w in unplaced.items()
    )
    twice = [c for c in FOUND if sum(c in p for p in placed) > 1]
    assert not twice, twice
    stale = [c for p in placed for c in p if c not in FOUND]
    assert not stale, f"entries no doc gives any more: {stale}"


def test_the_tests_named_for_commands_run_elsewhere_exist():
    for command, where in RUN_ELSEWHERE_IN_THE_SUITE.items():
        path, test = re.match(r"([\w./-]+?)(?:::(\w+))?(?:[ :]|$)", where).groups()
        assert (ROOT / path).is_file(), (command, where)
        if test:
            assert f"def {test}(" in (ROOT / path).read_text(), (command, where)


# --- running them ---------------------------------------------------------------------------


def with_port(command: str, port: int) -> str:
    """The command with the port a test cannot take (5000) replaced by ``port``."""
    return re.sub(r"\b5000\b", str(port), command)


def shell(command: str, project: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", command],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole
    )


def stop(process: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM to the command's process group (what it started too); its status and output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return process.returncode, output.decode(errors="replace")


def serves(process: subprocess.Popen, port: int, limit: float) -> bool:
    deadline = time.monotonic() + limit  # bounded: a pip install comes first in one case
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(port, "/healthz", timeout=2).status == 200:
                return True
        except OSError:
            time.sleep(0.2)
    return False


def fresh_env(project: Path, **extra: object) -> dict[str, str]:
    """The environment of a shell in ``project``; `gunicorn` on PATH as in an activated venv."""
    env = clean_env(**extra)
    env["PATH"] = f"{project / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    env.pop("VIRTUAL_ENV", None)
    return env


def copy_checkout(base: Path) -> Path:
    """The checkout as a fork of it holds it: every file, without what a run makes."""
    made = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "node_modules", ".pytest_cache", ".ruff_cache", ".env"
    )
    return Path(shutil.copytree(ROOT, base / "project", ignore=made))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A copy of the checkout where the README's first command has run: a new .venv, the
    lock installed from the package index, and the app served (then stopped)."""
    project = copy_checkout(tmp_path_factory.mktemp("docs-fresh"))
    run_server(README_RUN, project, limit=300)  # bounded: a pip install comes first
    return project


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A copy of the project whose .venv is the one the README's test command made (this
    suite's own), with every requirement file installed."""
    project = copy_checkout(tmp_path_factory.mktemp("docs-installed"))
    (project / ".venv").symlink_to(sys.prefix)
    return project


def run_server(command: str, project: Path, limit: float = 30) -> None:
    port = free_port()
    process = shell(with_port(command, port), project, fresh_env(project, PORT=port))
    try:
        up = serves(process, port, limit)
    finally:
        _, output = stop(process)
    assert up, f"{command}\n{output[-3000:]}"
    assert_no_traceback(output)


def run_to_exit_0(command: str, project: Path) -> None:
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env=fresh_env(project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


@pytest.mark.slow
def test_the_readmes_first_command_installs_and_serves(fresh):
    assert (fresh / ".venv" / "bin" / "python").exists()  # and it served: the fixture ran it


@pytest.mark.slow
@pytest.mark.parametrize("command", FRESH_VENV)
def test_a_command_on_a_new_venv_exits_0(command, fresh):
    run_to_exit_0(command, fresh)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in SERVERS if c != README_RUN])
def test_a_server_command_serves_as_written(command, installed):
    run_server(command, installed)


@pytest.mark.slow
@pytest.mark.parametrize("command", EXITS_0)
def test_a_command_exits_0_as_written(command, installed):
    run_to_exit_0(command, installed)


@pytest.mark.slow
def test_the_metrics_guide_shows_the_count_as_written(installed):
    port = free_port()
    script = "\n".join(with_port(line, port) for line in METRICS_BLOCK)
    process = shell(script, installed, fresh_env(installed, PORT=port))
    try:
        process.wait(timeout=60)  # the script; the server it started in the background runs on
    finally:
        _, output = stop(process)
    assert (
        'http_server_request_duration_seconds_count{http_request_method="GET",'
        'http_response_status_code="200",http_route="/api/info"} 1.0' in output
    ), output[-3000:]
