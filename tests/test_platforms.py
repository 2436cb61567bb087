"""The platform files, each run by the platform's own tool where this machine has it.

Replit's deployment is simulated (bash flask_deploy.sh as uid 65534 without a home,
REPLIT_DEPLOYMENT=1), the Procfile runs under honcho, the systemd unit is checked by
systemd-analyze and its command run as systemd would run it, and the Dockerfile, with
no Docker engine here, is parsed and its CMD and HEALTHCHECK run as the image would.
nginx has its own file: tests/test_nginx.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from launchers.gunicorn import options
from settings import BY_ENV, load_settings
from tests.container_support import dockerignore_regex
from tests.support import (
    PYTHON,
    ROOT,
    SECRET,
    Sandbox,
    Server,
    as_nobody,
    assert_no_traceback,
    clean_env,
    free_port,
    get,
    listening_ports,
    make_sandbox,
    need_tool,
    process_tree,
    running,
)

# Each test starts real servers or tools: left out of the quick `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

INTERNAL_PORT = 5000  # the one internal port: .replit, settings, Docker, README
PROXIED_PORT = 8000  # the app behind nginx on a VPS: nginx site and systemd unit
DEPLOY_COMMAND = ["gunicorn", "-c", "gunicorn_config.py", "wsgi:app"]
UNIT = ROOT / "deploy" / "systemd" / "flask-app.service"
NGINX_SITE = ROOT / "deploy" / "nginx" / "flask-app.conf"
GUIDES = (
    "docs/replit.md",
    "docs/procfile-hosts.md",
    "docs/docker.md",
    "docs/vps-nginx-systemd.md",
    "docs/windows.md",
    "docs/fly.md",
    "docs/port-80.md",
    "docs/zero-downtime.md",
    "deploy/README.md",
)


def replit_config(path: Path = ROOT / ".replit") -> dict:
    return tomllib.loads(path.read_text())


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def children(pid: int) -> list[int]:
    return [p for p in process_tree(pid) if p != pid and _parent(p) == pid]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def wait_workers_booted(master: int, workers: int, timeout: float = 20.0) -> None:
    """Until gunicorn's master has ``workers`` children with their own signal handlers.

    A SIGTERM that reaches gunicorn while a worker is between fork and its handler setup
    is lost in that worker (it still runs the master's handler), and the master then
    waits the whole GRACEFUL_TIMEOUT before killing it. Tests that stop gunicorn wait
    for this first. A booted worker catches SIGABRT; the master does not.
    """
    abrt = 1 << (signal.SIGABRT - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            booted = [c for c in children(master) if caught_signals(c) & abrt]
            if len(booted) >= workers:
                return
        time.sleep(0.05)
    raise AssertionError(f"gunicorn (pid {master}) did not boot {workers} workers in {timeout}s")


def error_lines(log: str) -> list[str]:
    """Log lines at ERROR or CRITICAL, in gunicorn's format or the app's."""
    levels = ("[ERROR]", " ERROR ", "[CRITICAL]", " CRITICAL ")
    return [line for line in log.splitlines() if any(level in line for level in levels)]


# --- .replit and flask_deploy.sh -------------------------------------------------------


def test_replit_file_keeps_the_contract():
    config = replit_config()
    assert config["run"] == "python3 main.py"
    assert config["deployment"]["run"] == ["bash", "flask_deploy.sh"]
    assert config["deployment"]["deploymentTarget"] == "cloudrun"
    assert config["ports"] == [{"localPort": INTERNAL_PORT, "externalPort": 80}]
    # Nothing in .replit may pin the app to localhost or to another port.
    for section in (config.get("env", {}), config["deployment"].get("env", {})):
        assert "HOST" not in section and "PORT" not in section


SHELL_SCRIPTS = sorted(
    path.relative_to(ROOT).as_posix()
    for pattern in ("*.sh", "scripts/*.sh", "deploy/**/*.sh")
    for path in ROOT.glob(pattern)
)


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_scripts_pass_shellcheck(script):
    shellcheck = need_tool("shellcheck", "the shell scripts are checked with the real shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_flask_deploy_does_nothing_slow_before_exec():
    """Only cheap shell built-ins run before gunicorn replaces the shell."""
    lines = [
        line.strip()
        for line in (ROOT / "flask_deploy.sh").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "set -euo pipefail" in lines
    assert lines[-1] == "exec " + " ".join(DEPLOY_COMMAND)
    cheap = {"set", "cd", "if", "fi", "echo", "exit", "then", "else"}
    for line in lines[:-1]:
        if line.startswith('"'):  # the continuation of an echo's message
            continue
        assert line.split()[0] in cheap, f"flask_deploy.sh runs {line!r} before exec"


@pytest.fixture(scope="module")
def replit_sandbox() -> Iterator[tuple[Sandbox, int]]:
    """A sandbox whose .replit maps a free port (not 5000) to 80."""
    base = Path(tempfile.mkdtemp(prefix="replit-sandbox-"))
    try:
        sandbox = make_sandbox(base)
        port = free_port("0.0.0.0")
        dot_replit = sandbox.project / ".replit"
        text, count = re.subn(
            rf"^localPort = {INTERNAL_PORT}$",
            f"localPort = {port}",
            dot_replit.read_text(),
            flags=re.M,
        )
        assert count == 1
        dot_replit.write_text(text)
        yield sandbox, port
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("platform_port", [None, "80"], ids=["no-PORT", "PORT=80"])
@pytest.mark.parametrize("cwd", ["project", "elsewhere"])
def test_replit_deployment_simulated(replit_sandbox, platform_port, cwd):
    sandbox, port = replit_sandbox
    env = sandbox.env(
        REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET, PORT=platform_port, HOME="/nonexistent"
    )
    script = "flask_deploy.sh" if cwd == "project" else str(sandbox.project / "flask_deploy.sh")
    workdir = sandbox.project if cwd == "project" else Path("/")
    server = Server(["bash", script], env, port, cwd=workdir, preexec=as_nobody).start()
    try:
        server.wait_ready(30)
        # The promotion probe: GET / answers, served by gunicorn in production.
        index = get(port, "/")
        assert index.status == 200 and "gunicorn" in index.text
        info = get(port, "/api/info").json()
        assert (info["launcher"], info["env"]) == ("gunicorn", "production")

        # The shell exec'ed gunicorn: the process Replit started is gunicorn's master,
        # and it holds the one listening socket, on every interface.
        argv = cmdline(server.pid)
        assert any(Path(arg).name == "gunicorn" for arg in argv[:2]), argv
        assert not any("flask_deploy" in arg for arg in argv), argv
        assert listening_ports([server.pid]) == {("0.0.0.0", port)}
        assert listening_ports(process_tree(server.pid)) == {("0.0.0.0", port)}

        wait_workers_booted(server.pid, load_settings(env, dotenv_path=None).workers)
        server.signal(signal.SIGTERM)  # how Replit stops a deployment
        assert server.wait_exit(20) == 0
        log = server.stdout + server.stderr
        assert "Handling signal: term" in log
        assert error_lines(log) == [], log
        assert "Control server error" not in log and "Permission denied" not in log, log
        assert_no_traceback(log)
        notices = [line for line in log.splitlines() if "PORT=80 ignored" in line]
        assert len(notices) == (1 if platform_port else 0), log
    finally:
        server.close()


# --- Procfile, under honcho --------------------------------------------------------------


def test_procfile_runs_gunicorn_with_the_config():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    assert lines == ["web: " + " ".join(DEPLOY_COMMAND)]


def test_procfile_under_honcho_honours_port_and_web_concurrency(tmp_path):
    port = free_port()
    empty_env_file = tmp_path / "empty.env"  # honcho would read a developer's .env
    empty_env_file.write_text("")
    env = clean_env(HOST="127.0.0.1", WEB_CONCURRENCY=3, APP_ENV="production", SECRET_KEY=SECRET)
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    args = [PYTHON, "-m", "honcho", "-e", str(empty_env_file), "start", "-p", str(port), "web"]
    seen: set[int] = set()
    server = Server(args, env, port).start()
    try:
        server.wait_ready(30)
        info = get(port, "/api/info").json()
        assert (info["launcher"], info["env"]) == ("gunicorn", "production")
        # gunicorn's master and its WEB_CONCURRENCY workers all hold the listening socket;
        # the first worker may answer before the last one has been forked (bounded wait).
        deadline = time.monotonic() + 15
        while True:
            # honcho starts each process in its own session: follow the tree, not the group.
            tree = process_tree(server.pid)
            seen.update(tree)
            holders = [pid for pid in tree if listening_ports([pid])]
            if len(holders) >= 1 + 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(holders) == 1 + 3, [_cmdline_or_empty(pid) for pid in holders]
        assert listening_ports(sorted(seen)) == {("127.0.0.1", port)}

        (master,) = [pid for pid in holders if _parent(pid) not in holders]
        wait_workers_booted(master, 3)
        server.signal(signal.SIGTERM)  # honcho passes it on and waits for gunicorn
        server.wait_exit(20)  # honcho's own code is 128 + SIGTERM
        log = server.stdout
        assert "Handling signal: term" in log and "Shutting down: Master" in log, log
        assert error_lines(log) == [], log
    finally:
        if server.proc.poll() is None:
            seen.update(process_tree(server.pid))  # also when the test failed early
        server.close()
        for pid in seen:  # anything honcho left behind (each child has its own group)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _cmdline_or_empty(pid: int) -> list[str]:
    try:
        return cmdline(pid)
    except OSError:
        return []


# --- Dockerfile and .dockerignore, parsed; its CMD and HEALTHCHECK run -------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def docker_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text())


def test_dockerfile_runs_gunicorn_as_non_root(dockerfile):
    keywords = [k for k, _ in dockerfile]
    assert dockerfile[0][0] == "FROM" and re.fullmatch(r"python:3\.\d+-slim\S*", dockerfile[0][1])

    users = [rest for k, rest in dockerfile if k == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and (not user.isdigit() or int(user) > 0)
    assert keywords.index("USER") < keywords.index("CMD")

    cmd = [rest for k, rest in dockerfile if k == "CMD"]
    assert len(cmd) == 1 and json.loads(cmd[0]) == DEPLOY_COMMAND  # exec form: gunicorn is PID 1
    assert all(rest.startswith("[") for k, rest in dockerfile if k == "ENTRYPOINT")

    exposed = [rest for k, rest in dockerfile if k == "EXPOSE"]
    assert exposed == [str(INTERNAL_PORT)]
    assert docker_env(dockerfile).get("APP_ENV") == "production"


def test_dockerfile_installs_dependencies_in_a_cached_layer(dockerfile):
    steps = [(k, rest) for k, rest in dockerfile if k in ("COPY", "RUN")]
    code = next(i for i, (k, rest) in enumerate(steps) if k == "COPY" and rest.split()[0] == ".")
    install = next(i for i, (k, rest) in enumerate(steps) if k == "RUN" and "pip install" in rest)
    requirements = next(
        i
        for i, (k, rest) in enumerate(steps)
        if k == "COPY" and rest.startswith("requirements.txt")
    )
    assert requirements < install < code


def test_dockerfile_healthcheck_needs_no_extra_package(dockerfile):
    checks = [rest for k, rest in dockerfile if k == "HEALTHCHECK"]
    assert len(checks) == 1
    _, _, command = checks[0].partition("CMD ")
    argv = json.loads(command)
    assert argv[0] == "python" and "/healthz" in argv[-1]
    assert not {"curl", "wget"} & set(re.findall(r"\w+", command))


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = dockerignore_regex(pattern.lstrip("!").rstrip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_lets_in_the_app_and_keeps_out_secrets():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    needed = [
        "requirements.txt",
        "main.py",
        "wsgi.py",
        "gunicorn_config.py",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*") if p.is_file()),
        *(str(p.relative_to(ROOT)) for p in (ROOT / "launchers").glob("*.py")),
    ]
    needed = [p for p in needed if "__pycache__" not in p]
    assert [p for p in needed if dockerignore_excludes(p, patterns)] == []
    for secret in (".env", ".git/config", ".venv/bin/python", "tests/test_app.py"):
        assert dockerignore_excludes(secret, patterns), secret
    assert dockerignore_excludes("app/__pycache__/views.cpython-311.pyc", patterns)


def test_docker_cmd_and_healthcheck_run_as_in_the_image(dockerfile, sandbox):
    """The image's CMD with the image's ENV, as a non-root user; then its HEALTHCHECK."""
    port = free_port()
    image_env = docker_env(dockerfile)
    env = sandbox.env(**image_env, SECRET_KEY=SECRET, PORT=port, HOST="127.0.0.1")
    cmd = json.loads(next(rest for k, rest in dockerfile if k == "CMD"))
    check = json.loads(
        next(rest for k, rest in dockerfile if k == "HEALTHCHECK").partition("CMD ")[2]
    )
    check[0] = str(sandbox.python)  # the image's python

    def healthcheck() -> int:
        return subprocess.run(
            check,
            env=env,
            cwd=sandbox.project,
            capture_output=True,
            timeout=30,
            preexec_fn=as_nobody,
        ).returncode

    with running(cmd, env, port, cwd=sandbox.project, preexec=as_nobody) as server:
        assert get(port, "/api/info").json()["env"] == "production"
        assert healthcheck() == 0
        wait_workers_booted(server.pid, load_settings(env, dotenv_path=None).workers)
        server.signal(signal.SIGTERM)  # docker stop
        assert server.wait_exit(20) == 0
    assert healthcheck() == 1  # nothing listening: unhealthy, and not Docker's reserved 2


# --- systemd ------------------------------------------------------------------------------


def unit_values(text: str, key: str) -> list[str]:
    return [
        line.partition("=")[2]
        for line in text.splitlines()
        if line.startswith(f"{key}=") and not line.startswith("#")
    ]


def unit_environment(text: str) -> dict[str, str]:
    env = {}
    for value in unit_values(text, "Environment"):
        for pair in shlex.split(value):
            key, _, val = pair.partition("=")
            env[key] = val
    return env


def localized_unit(tree: Path, port: int | None = None, text: str | None = None) -> str:
    """The shipped unit (or ``text``) with its absolute paths moved under ``tree`` (and
    PORT, if given).

    Only settings change; comments keep the shipped paths.
    """
    lines = []
    for line in (UNIT.read_text() if text is None else text).splitlines():
        if not line.startswith("#"):
            for path in ("/srv/flask-app", "/etc/flask-app", "/run/flask-app"):
                line = line.replace(f"={path}", f"={tree}{path}").replace(
                    f" {path}", f" {tree}{path}"
                )
            if port is not None:
                line = line.replace(f"PORT={PROXIED_PORT} ", f"PORT={port} ")
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def unit_tree(sandbox) -> Iterator[Path]:
    """/srv/flask-app (the project and its .venv) and /etc/flask-app/env, under a temp dir."""
    tree = Path(tempfile.mkdtemp(prefix="systemd-tree-"))
    try:
        tree.chmod(0o755)
        app_dir = tree / "srv" / "flask-app"
        app_dir.mkdir(parents=True)
        for entry in sandbox.project.iterdir():
            (app_dir / entry.name).symlink_to(entry)
        (app_dir / ".venv").symlink_to(sandbox.bin.parent)
        (tree / "srv").chmod(0o755)
        app_dir.chmod(0o755)
        etc = tree / "etc" / "flask-app"
        etc.mkdir(parents=True)
        (etc / "env").write_text(f"SECRET_KEY={SECRET}\n")
        runtime = tree / "run" / "flask-app"
        runtime.mkdir(parents=True)
        (tree / "run").chmod(0o755)
        os.chown(runtime, 65534, 65534)
        runtime.chmod(0o700)
        yield tree
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def test_systemd_unit_shape():
    text = UNIT.read_text()
    env = unit_environment(text)
    assert (env["HOST"], env["PORT"], env["TRUSTED_PROXY_HOPS"]) == (
        "127.0.0.1",
        str(PROXIED_PORT),
        "1",
    )
    assert env["APP_ENV"] == "production"
    user = unit_values(text, "User")
    assert unit_values(text, "DynamicUser") == ["yes"] or (user and user[0] not in ("root", "0"))
    assert unit_values(text, "EnvironmentFile")
    assert unit_values(text, "KillMode") == ["mixed"]
    graceful = BY_ENV["GRACEFUL_TIMEOUT"].default
    assert float(unit_values(text, "TimeoutStopSec")[0]) > graceful
    assert "GRACEFUL_TIMEOUT" not in env or float(env["GRACEFUL_TIMEOUT"]) < float(
        unit_values(text, "TimeoutStopSec")[0]
    )
    assert unit_values(text, "RuntimeDirectory")
    for hardening in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert unit_values(text, hardening) == ["yes"], hardening
    assert unit_values(text, "ProtectSystem") == ["strict"]
    exec_start = shlex.split(unit_values(text, "ExecStart")[0])
    assert Path(exec_start[0]).name == "gunicorn" and exec_start[1:] == DEPLOY_COMMAND[1:]
    # The commented variant: port 80 by capability, not root.
    assert re.search(r"^#\s*AmbientCapabilities=CAP_NET_BIND_SERVICE$", text, re.M)
    assert re.search(r"^#\s*Environment=.*\bPORT=80\b", text, re.M)


def test_systemd_analyze_verifies_the_unit(unit_tree):
    analyze = need_tool("systemd-analyze", "the unit is checked by systemd's own verifier")
    unit = unit_tree / "flask-app.service"
    unit.write_text(localized_unit(unit_tree))
    # Only the absolute paths differ from the shipped file.
    changed = [
        (a, b)
        for a, b in zip(UNIT.read_text().splitlines(), unit.read_text().splitlines(), strict=True)
        if a != b
    ]
    assert {a.partition("=")[0] for a, _ in changed} == {
        "WorkingDirectory",
        "EnvironmentFile",
        "Environment",
        "ExecStart",
    }
    assert all(str(unit_tree) in b for _, b in changed)

    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=unit_tree
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flask-app.service" not in result.stderr, result.stderr  # no warning about the unit

    # And the shipped file fails verification only for the missing binary, nothing else
    # (on a machine where the app is installed in /srv/flask-app, it passes).
    shipped = subprocess.run(
        [analyze, "verify", str(UNIT)], capture_output=True, text=True, timeout=60, cwd=unit_tree
    )
    problems = [line for line in shipped.stderr.splitlines() if "flask-app.service" in line]
    binary = "/srv/flask-app/.venv/bin/gunicorn"
    if Path(binary).exists():
        assert shipped.returncode == 0 and problems == [], shipped.stderr
    else:
        assert problems and all(binary in line for line in problems), shipped.stderr


def test_the_instance_template_is_the_unit_with_its_port_as_the_instance_name(unit_tree):
    """deploy/systemd/instance-template.sh, as docs/zero-downtime.md runs it, verified by
    systemd as the instance flask-app@8001."""
    analyze = need_tool("systemd-analyze", "the template is checked by systemd's own verifier")
    script = ROOT / "deploy" / "systemd" / "instance-template.sh"
    made = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    settings = [line for line in made.splitlines() if line and not line.startswith("#")]
    shipped = [line for line in UNIT.read_text().splitlines() if line and not line.startswith("#")]
    changed = {a.partition("=")[0] for a, b in zip(shipped, settings, strict=True) if a != b}
    assert changed == {"Description", "Environment", "RuntimeDirectory"}
    env = unit_environment(made)
    assert (env["PORT"], env["TMPDIR"]) == ("%i", "/run/flask-app-%i")
    assert unit_values(made, "RuntimeDirectory") == ["flask-app-%i"]

    (unit_tree / "flask-app@.service").write_text(localized_unit(unit_tree, text=made))
    (unit_tree / "run" / "flask-app-8001").mkdir(exist_ok=True)
    result = subprocess.run(
        [analyze, "verify", str(unit_tree / "flask-app@8001.service")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit_tree,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flask-app@" not in result.stderr, result.stderr  # no warning about the unit


def test_systemd_analyze_security_rates_the_unit_ok(unit_tree):
    analyze = need_tool("systemd-analyze", "the unit's hardening is scored by systemd")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit_tree,
    )
    # The threshold is the exposure level times ten: at most 2.0 of 10.
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr


def test_systemd_exec_start_serves_as_systemd_would_run_it(unit_tree):
    """ExecStart with the unit's environment, as an unprivileged user, notifying readiness."""
    port = free_port()
    text = localized_unit(unit_tree, port)
    env = clean_env(**unit_environment(text))
    env_file = Path(unit_values(text, "EnvironmentFile")[0])
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    env["PATH"] = "/usr/bin:/bin"  # systemd's default: the venv is reached by ExecStart's path
    env.pop("HOME", None)
    notify_dir = unit_tree / "notify"
    notify_dir.mkdir(exist_ok=True)
    notify_dir.chmod(0o755)
    notify_path = notify_dir / "socket"
    with contextlib.suppress(FileNotFoundError):
        notify_path.unlink()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        notify.bind(str(notify_path))
        notify_path.chmod(0o777)
        notify.settimeout(20)
        env["NOTIFY_SOCKET"] = str(notify_path)
        argv = shlex.split(unit_values(text, "ExecStart")[0])
        workdir = Path(unit_values(text, "WorkingDirectory")[0])
        with running(argv, env, port, cwd=workdir, preexec=as_nobody) as server:
            assert b"READY=1" in notify.recv(4096)  # Type=notify is right for this gunicorn
            info = get(port, "/api/info").json()
            assert (info["launcher"], info["env"], info["trusted_proxy_hops"]) == (
                "gunicorn",
                "production",
                1,
            )
            assert listening_ports(process_tree(server.pid)) == {("127.0.0.1", port)}
            wait_workers_booted(server.pid, load_settings(env, dotenv_path=None).workers)
            server.signal(signal.SIGTERM)  # systemctl stop, KillMode=mixed: the master first
            timeout_stop = float(unit_values(text, "TimeoutStopSec")[0])
            assert server.wait_exit(timeout_stop) == 0
            assert error_lines(server.stderr) == [], server.stderr
    finally:
        notify.close()


# --- one internal port, and the docs the error messages point at ------------------------


def test_one_internal_port_everywhere(dockerfile):
    (entry,) = replit_config()["ports"]
    assert entry["localPort"] == INTERNAL_PORT
    assert BY_ENV["PORT"].default == INTERNAL_PORT
    settings = load_settings(clean_env(), dotenv_path=None)
    assert options(settings)["bind"] == [f"0.0.0.0:{INTERNAL_PORT}"]
    replit = load_settings(clean_env(REPLIT_DEPLOYMENT=1, SECRET_KEY=SECRET), dotenv_path=None)
    assert replit.port == INTERNAL_PORT
    assert [rest for k, rest in dockerfile if k == "EXPOSE"] == [str(INTERNAL_PORT)]
    healthcheck = next(rest for k, rest in dockerfile if k == "HEALTHCHECK")
    assert f"'PORT', '{INTERNAL_PORT}'" in healthcheck
    # The Procfile names no port of its own: the platform's $PORT, else the default.
    procfile = (ROOT / "Procfile").read_text()
    assert not re.search(r"--bind|-b\s|\b\d{4,5}\b", procfile), procfile

    readme = (ROOT / "README.md").read_text()
    deploy = readme.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    assert f"{INTERNAL_PORT}" in deploy
    ports_named = {int(p) for p in re.findall(r"\b(\d{4,5})\b", deploy)}
    assert ports_named <= {INTERNAL_PORT, PROXIED_PORT}, ports_named

    # Behind nginx on a VPS: the site's upstream is the unit's bind.
    upstream = re.search(r"^\s*server ([\d.]+):(\d+)\b", NGINX_SITE.read_text(), re.M)
    env = unit_environment(UNIT.read_text())
    assert upstream and (upstream[1], int(upstream[2])) == (env["HOST"], int(env["PORT"]))
    assert int(env["PORT"]) == PROXIED_PORT


def test_guides_exist_and_error_messages_point_at_real_files():
    for guide in GUIDES:
        assert (ROOT / guide).is_file(), guide
    from launchers import ports

    rights = ports.port_rights(80, start=1024, uid=1000, capability=False)
    message = ports.privileged_port_problem("0.0.0.0", rights).message
    named = re.findall(r"\b(?:deploy|docs)/[\w./-]*", message)
    assert named, message
    for path in named:
        assert (ROOT / path.rstrip(".")).exists(), path
    readme = (ROOT / "README.md").read_text()
    assert readme.index("## Deploy") < readme.index("## Layout")
    deploy = readme.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    for link in re.findall(r"\]\(([^)#]+)\)", deploy):
        assert (ROOT / link).exists(), link
