"""Helpers for tests that start real servers as subprocesses on loopback.

Every server runs in its own process group and is killed with it, so nothing
outlives a test. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from settings import VARIABLES

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOBODY = 65534

# Variables that must not leak from the developer's shell: every one the settings read,
# and the platforms' own that change what our code or gunicorn does.
OUR_VARIABLES = (
    *VARIABLES,
    "REPL_ID",
    "DYNO",
    "INVOCATION_ID",
    "KUBERNETES_SERVICE_HOST",
    "GUNICORN_CMD_ARGS",
    "FORWARDED_ALLOW_IPS",
    "PROMETHEUS_MULTIPROC_DIR",  # prometheus_client's, read with METRICS on
)
SECRET = "test-secret-key-0123456789abcdef"


def need_tool(name: str, why: str = "") -> str:
    """The tool's path; skip without it, except in CI where a missing tool is a failure."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed{': ' + why if why else ''} (.ci/run installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def process_tree(pid: int) -> list[int]:
    """pid and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_env(**overrides: str | int | None) -> dict[str, str]:
    """os.environ without our variables, plus ``overrides`` (None removes)."""
    env = {k: v for k, v in os.environ.items() if k not in OUR_VARIABLES}
    env["ENV_FILE"] = "none"  # a developer's .env must not change what tests see
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(
    method: str,
    url_or_port: str | int,
    path: str = "/",
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    timeout: float = 5.0,
) -> Response:
    port = int(url_or_port)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def get(port: int, path: str = "/", **kw) -> Response:
    return request("GET", port, path, **kw)


def raw_exchange(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server answers until it closes or goes quiet."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def listening_ports(pids: Sequence[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP listener owned by these processes, from /proc."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    addr_hex, port_hex = cols[1].rsplit(":", 1)
                    found.add((_decode_addr(addr_hex), int(port_hex, 16)))
    return found


def _decode_addr(hex_addr: str) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


@dataclass
class Server:
    """A server subprocess in its own process group, its output in files."""

    args: Sequence[str]
    env: Mapping[str, str]
    port: int | None = None
    cwd: Path = ROOT
    preexec: object = None
    proc: subprocess.Popen | None = None
    _out: object = None
    _err: object = None
    _dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="server-"))

    def start(self) -> Server:
        self._out = open(os.path.join(self._dir, "stdout"), "wb")  # noqa: SIM115
        self._err = open(os.path.join(self._dir, "stderr"), "wb")  # noqa: SIM115

        def child_setup() -> None:
            os.setsid()
            # A child of a non-interactive shell may inherit SIGINT ignored.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if callable(self.preexec):
                self.preexec()

        self.proc = subprocess.Popen(
            list(self.args),
            env=dict(self.env),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            preexec_fn=child_setup,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(
        self, timeout: float = 20.0, path: str = "/healthz", host: str = "127.0.0.1"
    ) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode} before it was ready\n"
                    f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            try:
                if get(self.port, path, host=host, timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(
            f"server not ready in {timeout}s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )

    def wait_exit(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"server did not exit in {timeout}s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            ) from None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def _read(self, name: str) -> str:
        for f in (self._out, self._err):
            if f is not None:
                f.flush()
        try:
            return Path(self._dir, name).read_text(errors="replace")
        except OSError:
            return ""

    @property
    def stdout(self) -> str:
        return self._read("stdout")

    @property
    def stderr(self) -> str:
        return self._read("stderr")

    def close(self) -> None:
        self.kill()
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def running(
    args: Sequence[str],
    env: Mapping[str, str],
    port: int | None = None,
    *,
    ready: bool = True,
    ready_timeout: float = 20.0,
    **kw,
) -> Iterator[Server]:
    server = Server(args, env, port, **kw).start()
    try:
        if ready:
            server.wait_ready(ready_timeout)
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def port_holder() -> Iterator[tuple[int, int]]:
    """Another process listening on a free loopback port: (port, its pid)."""
    port = free_port()
    code = (
        "import socket, time\n"
        "s = socket.socket()\n"
        f"s.bind(('127.0.0.1', {port}))\n"
        "s.listen()\n"
        "time.sleep(120)\n"
    )
    holder = Server([sys.executable, "-c", code], clean_env()).start()
    try:
        for _ in range(100):
            if ("127.0.0.1", port) in listening_ports([holder.pid]):
                break
            assert holder.proc.poll() is None, holder.stderr
            time.sleep(0.05)
        else:
            raise AssertionError("the holder never listened")
        yield port, holder.pid
    finally:
        holder.close()


def run_main(
    *args: str,
    env: Mapping[str, str],
    timeout: float = 30.0,
    python: str = PYTHON,
    cwd: Path = ROOT,
    preexec=None,
) -> subprocess.CompletedProcess:
    """``python main.py ARGS`` to completion (for commands and failing starts)."""
    return subprocess.run(
        [python, "main.py", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
        start_new_session=True,
    )


def assert_no_traceback(text: str) -> None:
    assert "Traceback (most recent call last)" not in text, text


# --- running as an unprivileged user ---------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    """A world-readable copy of the project and a venv an unprivileged user can run."""

    root: Path
    project: Path
    python: Path
    bin: Path

    def env(self, **overrides) -> dict[str, str]:
        env = clean_env(**overrides)
        env["PATH"] = f"{self.bin}:/usr/bin:/bin"
        env.setdefault("HOME", "/nonexistent")
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONPATH", None)
        return env


def as_nobody() -> None:
    """preexec: drop to uid/gid 65534 with no supplementary groups (like setpriv)."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def setpriv_prefix() -> list[str]:
    return [need_tool("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


PROJECT_FILES = (
    "app",
    "launchers",
    "settings",
    "main.py",
    "wsgi.py",
    "gunicorn_config.py",
    ".replit",
    "flask_deploy.sh",
    "Procfile",
)


def copy_project(project: Path) -> Path:
    """The files a deployment needs (PROJECT_FILES), copied to ``project``."""
    project.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, project / name)
    return project


def make_sandbox(base: Path) -> Sandbox:
    """Copy the project and the installed packages where uid 65534 can read them.

    The default python3 here may live under root's 0700 home, so the venv is made
    from Debian's /usr/bin/python3 (same minor version) and pointed at a copy of
    this interpreter's site-packages: no network, a second or two.
    """
    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs root")
    system_python = Path("/usr/bin/python3")
    if not system_python.exists():
        message = "tests as an unprivileged user need /usr/bin/python3 (Debian's python3)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    version = subprocess.run(
        [system_python, "-c", "import sys; print('{}.{}'.format(*sys.version_info[:2]))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != "{}.{}".format(*sys.version_info[:2]):
        message = f"/usr/bin/python3 is {version}, the test interpreter is {sys.version_info[:2]}"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    project = copy_project(base / "project")
    site = base / "site"
    shutil.copytree(
        sysconfig.get_paths()["purelib"],
        site,
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__", "pip", "pip-*"),
    )
    venv = base / "venv"
    subprocess.run([system_python, "-m", "venv", "--copies", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "project-deps.pth").write_text(f"{site}\n")
    for tool, module in (("gunicorn", "gunicorn.app.wsgiapp"),):
        script = venv / "bin" / tool
        script.write_text(f"#!{python}\nimport sys\nfrom {module} import run\nsys.exit(run())\n")
        script.chmod(0o755)
    for path in (base, *base.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    return Sandbox(base, project, python, venv / "bin")
