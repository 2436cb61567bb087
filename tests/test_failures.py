"""Every bad start in the contract's Failures section, as a real process, under every launcher.

Each one must end quickly with one paragraph on stderr (what, why, the fix), the
documented exit code, and no Python traceback: before any server prints its own.
Privileges are the point of some, so those run as uid 65534 through setpriv.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings.errors import BindError, ConfigError, LauncherUnavailable
from tests.support import (
    IN_CI,
    PYTHON,
    ROOT,
    SECRET,
    Sandbox,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
    listening_ports,
    make_sandbox,
    need_tool,
    port_holder,
    process_tree,
    run_main,
    running,
    setpriv_prefix,
)

# Each test starts real servers or tools: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

# How each launcher is started: main.py with APP_LAUNCHER, or gunicorn's own command.
LAUNCHES = {
    "dev": {"APP_LAUNCHER": "dev", "FLASK_DEBUG": "0"},
    "gunicorn": {"APP_LAUNCHER": "gunicorn"},
    "waitress": {"APP_LAUNCHER": "waitress"},
    "gunicorn -c": {},
}
GUNICORN_COMMAND = ("-c", "gunicorn_config.py", "wsgi:app")
START_TIMEOUT = 20  # a bad start must end by itself well before this


def command(launch: str, python: str | Path = PYTHON) -> list[str]:
    if launch == "gunicorn -c":
        script = Path(python).parent / "gunicorn"  # the console script, as platforms run it
        return [str(script), *GUNICORN_COMMAND]
    return [str(python), "main.py"]


def launch_env(launch: str, sandbox: Sandbox | None = None, **values) -> dict[str, str]:
    values = {"WEB_CONCURRENCY": 1, **LAUNCHES[launch], **values}
    return sandbox.env(**values) if sandbox else clean_env(**values)


def start(
    launch: str,
    env: dict[str, str],
    *,
    sandbox: Sandbox | None = None,
    as_nobody: bool = False,
) -> subprocess.CompletedProcess:
    """Run a start that is meant to fail, to completion (bounded)."""
    python = sandbox.python if sandbox else PYTHON
    args = command(launch, python)
    if as_nobody:
        args = [*setpriv_prefix(), *args]
    return subprocess.run(
        args,
        env=env,
        cwd=sandbox.project if sandbox else ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def assert_refused(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """One ``error:`` paragraph naming ``words``, exit ``code``, no traceback, no retry loop."""
    output = result.stdout + result.stderr
    assert result.returncode == code, f"exit {result.returncode}, expected {code}\n{output}"
    starts = [n for n, line in enumerate(result.stderr.splitlines()) if line.startswith("error: ")]
    assert len(starts) == 1, result.stderr  # one message, printed once
    message = "\n".join(result.stderr.splitlines()[starts[0] :])
    flat = " ".join(message.split())  # prose is wrapped at 100 columns: match across lines
    for word in words:
        assert " ".join(word.split()) in flat, f"{word!r} not in:\n{message}"
    assert_no_traceback(output)
    assert "Retrying in 1 second" not in output  # gunicorn's own bind loop never started
    assert "Listening at" not in output and "Serving on" not in output
    return message


# --- malformed values --------------------------------------------------------------------

MALFORMED = [
    ("PORT", "abc", "1 to 65535"),
    ("PORT", "70000", "1 to 65535"),
    ("WEB_CONCURRENCY", "0", "at least 1"),
    ("APP_LAUNCHER", "nginx", "auto, dev, gunicorn, waitress"),
]


# APP_LAUNCHER=nginx replaces the launcher itself: once through main.py, once through gunicorn.
MALFORMED_STARTS = [
    pytest.param(launch, *case, id=f"{launch}-{case[0]}={case[1]}")
    for launch in LAUNCHES
    for case in MALFORMED
    if not (case[0] == "APP_LAUNCHER" and launch in ("gunicorn", "waitress"))
]


@pytest.mark.parametrize(("launch", "name", "value", "accepted"), MALFORMED_STARTS)
def test_a_malformed_value_names_the_variable(launch, name, value, accepted):
    values = {"PORT": free_port(), "HOST": "127.0.0.1", name: value}
    env = launch_env(launch, **values)
    assert_refused(start(launch, env), ConfigError.exit_code, f"{name}={value!r}", accepted)


def test_a_malformed_flag_names_the_flag():
    env = clean_env(HOST="127.0.0.1")
    result = subprocess.run(
        [PYTHON, "main.py", "--port", "eighty"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert_refused(result, ConfigError.exit_code, "PORT='eighty'", "flag --port")


# --- a privileged port --------------------------------------------------------------------


@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_privileged_port_as_an_unprivileged_user(sandbox, launch):
    env = launch_env(launch, sandbox, PORT=80, HOST="127.0.0.1")
    result = start(launch, env, sandbox=sandbox, as_nobody=True)
    message = assert_refused(
        result,
        BindError.exit_code,
        "127.0.0.1:80",
        "uid 65534",
        "reverse proxy",
        "deploy/nginx/",
        f"sudo setcap 'cap_net_bind_service=+ep' {sandbox.python}",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "--dport 80 -j REDIRECT",
        "docker run -p 80:5000",
    )
    assert "PermissionError" in message  # named as what it prevents, not raised
    setcap = f"sudo setcap 'cap_net_bind_service=+ep' {sandbox.python}"
    assert setcap in message.splitlines()[-2], message  # one line, ready to copy


@pytest.fixture(scope="module")
def replit_sandbox() -> Iterator[tuple[Sandbox, int]]:
    """A sandbox whose .replit maps a free port (not 5000, which may be busy) to 80."""
    base = Path(tempfile.mkdtemp(prefix="flask-starter-replit-"))
    try:
        box = make_sandbox(base)
        internal = free_port()
        replit = box.project / ".replit"
        text = replit.read_text()
        assert "localPort = 5000" in text
        replit.write_text(text.replace("localPort = 5000", f"localPort = {internal}"))
        yield box, internal
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_privileged_port_in_a_replit_deployment_serves_on_the_internal_port(
    replit_sandbox, launch
):
    box, internal = replit_sandbox
    env = launch_env(
        launch, box, PORT=80, REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET, ALLOW_DEV_SERVER=1
    )
    args = [*setpriv_prefix(), *command(launch, box.python)]
    with running(args, env, internal, cwd=box.project) as server:
        assert get(internal, "/healthz").json() == {"status": "ok"}
        assert get(internal, "/api/info").json()["env"] == "production"
        listeners = listening_ports(process_tree(server.pid))
        assert ("0.0.0.0", internal) in listeners and not any(p == 80 for _, p in listeners)
        log = server.stdout + server.stderr
        notice = "PORT=80 ignored in this Replit deployment"
        assert log.count(notice) == 1, log  # one line saying so, not one per layer
        assert f"serving on {internal}" in log
        assert_no_traceback(log)


# --- a port in use ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def held_port() -> Iterator[tuple[int, int]]:
    """A port held by another process: (port, its pid)."""
    with port_holder() as held:
        yield held


@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_port_in_use_names_the_holder(held_port, launch):
    port, pid = held_port
    env = launch_env(launch, PORT=port, HOST="127.0.0.1")
    message = assert_refused(
        start(launch, env),
        BindError.exit_code,
        f"127.0.0.1:{port}",
        f"already in use by pid {pid}",
        f"kill {pid}",
        "PORT=",
    )
    assert "Errno 98" in message


def test_a_port_in_use_on_all_interfaces_is_found_too(held_port):
    port, pid = held_port
    env = launch_env("waitress", PORT=port, HOST="0.0.0.0")
    assert_refused(start("waitress", env), BindError.exit_code, f"pid {pid}")


# --- production rules ---------------------------------------------------------------------


@pytest.mark.parametrize("launch", LAUNCHES)
def test_production_without_a_secret_key(launch):
    env = launch_env(launch, APP_ENV="production", PORT=free_port(), HOST="127.0.0.1")
    assert_refused(start(launch, env), ConfigError.exit_code, "SECRET_KEY", "secrets.token_hex")


@pytest.mark.parametrize("launch", LAUNCHES)
def test_production_with_debug_on(launch):
    env = launch_env(
        launch,
        APP_ENV="production",
        SECRET_KEY=SECRET,
        FLASK_DEBUG=1,
        PORT=free_port(),
        HOST="127.0.0.1",
    )
    assert_refused(start(launch, env), ConfigError.exit_code, "FLASK_DEBUG", "FLASK_DEBUG=0")


@pytest.mark.parametrize("how", ["environment", "flag"])
def test_the_dev_launcher_in_production_is_refused(how):
    env = clean_env(APP_ENV="production", SECRET_KEY=SECRET, PORT=free_port(), HOST="127.0.0.1")
    args = [PYTHON, "main.py"]
    if how == "flag":
        args += ["--launcher", "dev"]
    else:
        env["APP_LAUNCHER"] = "dev"
    result = subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=START_TIMEOUT
    )
    assert_refused(result, ConfigError.exit_code, "APP_LAUNCHER=dev", "ALLOW_DEV_SERVER=1")


def test_the_dev_launcher_in_production_runs_when_the_user_means_it():
    port = free_port()
    env = launch_env(
        "dev",
        APP_ENV="production",
        SECRET_KEY=SECRET,
        ALLOW_DEV_SERVER=1,
        PORT=port,
        HOST="127.0.0.1",
    )
    with running(command("dev"), env, port) as server:
        info = get(port, "/api/info").json()
        assert info["launcher"] == "dev" and info["env"] == "production"
        assert_no_traceback(server.stderr)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_loopback_host_in_a_replit_deployment(launch):
    env = launch_env(
        launch,
        REPLIT_DEPLOYMENT=1,
        SECRET_KEY=SECRET,
        ALLOW_DEV_SERVER=1,
        HOST="127.0.0.1",
        PORT=free_port(),
    )
    assert_refused(
        start(launch, env), ConfigError.exit_code, "HOST=127.0.0.1", "never opened", "0.0.0.0"
    )


# --- launchers that cannot run here --------------------------------------------------------

# This machine is Linux: Windows is faked after the third-party imports (click reads
# the platform at import), before ours, so that the settings see "win32".
AS_WINDOWS = (
    "import sys, flask, werkzeug.serving\n"
    "sys.platform = 'win32'\n"
    "sys.argv = ['main.py']\n"
    "import runpy\n"
    "runpy.run_path('main.py', run_name='__main__')\n"
)


def test_gunicorn_on_windows_is_refused():
    env = clean_env(APP_LAUNCHER="gunicorn", PORT=free_port(), HOST="127.0.0.1")
    result = subprocess.run(
        [PYTHON, "-c", AS_WINDOWS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert_refused(result, LauncherUnavailable.exit_code, "Windows", "APP_LAUNCHER=waitress")


@pytest.mark.parametrize("package", ["gunicorn", "waitress"])
def test_a_launcher_whose_package_is_missing(package):
    code = f"import sys\nsys.modules[{package!r}] = None  # as if not installed\n" + (
        "sys.argv = ['main.py']\nimport runpy\nrunpy.run_path('main.py', run_name='__main__')\n"
    )
    env = clean_env(APP_LAUNCHER=package, PORT=free_port(), HOST="127.0.0.1")
    result = subprocess.run(
        [PYTHON, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert_refused(
        result, LauncherUnavailable.exit_code, f"needs the package {package!r}", "pip install"
    )


# --- the setcap route, for real --------------------------------------------------------------


def port_80_is_free() -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 80))
        except OSError:
            return False
    return True


def doctor_as_nobody(box: Sandbox, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*setpriv_prefix(), str(box.python), "main.py", "doctor"],
        env=env,
        cwd=box.project,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_setcap_on_the_real_interpreter_lets_nobody_bind_port_80():
    setcap = need_tool("setcap", "the setcap route for port 80")
    if os.geteuid() != 0:
        pytest.skip("setcap needs root")
    if not port_80_is_free():
        message = "127.0.0.1:80 is in use on this machine"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="flask-starter-setcap-"))
    try:
        box = make_sandbox(base)  # a venv made with --copies: a real binary of its own
        assert not box.python.is_symlink()
        env = box.env(PORT=80, HOST="127.0.0.1", WEB_CONCURRENCY=1, FLASK_DEBUG=0)

        before = doctor_as_nobody(box, env)
        assert before.returncode == 1, before.stdout + before.stderr
        assert f"sudo setcap 'cap_net_bind_service=+ep' {box.python}" in before.stdout

        subprocess.run([setcap, "cap_net_bind_service=+ep", str(box.python)], check=True)
        after = doctor_as_nobody(box, env)
        assert after.returncode == 0, after.stdout + after.stderr
        port_lines = [line for line in after.stdout.splitlines() if line.startswith("ok ")]
        assert any("has CAP_NET_BIND_SERVICE" in line for line in port_lines), after.stdout

        for launch in ("gunicorn", "gunicorn -c", "waitress", "dev"):
            args = [*setpriv_prefix(), *command(launch, box.python)]
            with running(
                args, launch_env(launch, box, PORT=80, HOST="127.0.0.1"), 80, cwd=box.project
            ) as s:
                assert get(80, "/healthz").status == 200
                assert ("127.0.0.1", 80) in listening_ports(process_tree(s.pid))
                assert_no_traceback(s.stdout + s.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)  # the capability goes with the copy


def test_without_the_dependencies_one_paragraph_names_the_install_command():
    """A fresh clone's `python3 main.py`: no site-packages (-S), so no Flask."""
    result = subprocess.run(
        [PYTHON, "-S", "main.py"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 4, result
    assert_no_traceback(result.stderr)
    assert "pip install -r requirements.txt" in result.stderr and "flask" in result.stderr
    assert result.stderr.count("error:") == 1


def test_config_shows_the_settings_even_when_a_start_would_be_refused():
    result = run_main("config", env=clean_env(APP_ENV="production"))
    assert result.returncode == 0 and "APP_ENV" in result.stdout
    assert "SECRET_KEY" in result.stderr and "refused" in result.stderr
