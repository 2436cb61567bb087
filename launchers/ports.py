"""Port rules, in one place for every launcher and for ``python main.py doctor``.

Binding a port below the kernel's ``ip_unprivileged_port_start`` (1024 unless
changed; Docker sets it to 0 inside containers) needs root or the
CAP_NET_BIND_SERVICE capability. Servers report the failure as a bare
``PermissionError: [Errno 13]`` traceback, or (gunicorn) retry for five
seconds first; we check before any server starts and say what to do instead.
The same goes for a port already in use (``[Errno 98]``): a pre-flight bind
finds it, and /proc names the process holding it.

Every function that reads the machine takes the file it reads as a parameter,
so the rules can be tested with made-up /proc contents.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from launchers.errors import BindError

UNPRIVILEGED_PORT_START = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
PROC_STATUS = Path("/proc/self/status")
PROC = Path("/proc")
CAP_NET_BIND_SERVICE = 10
CLASSIC_PRIVILEGED_LIMIT = 1024
REPLIT_FILE = Path(__file__).resolve().parent.parent / ".replit"
DEFAULT_INTERNAL_PORT = 5000
TCP_LISTEN = "0A"  # socket states in /proc/net/tcp
TCP_CLOSE = "07"  # bound but not listening (still holds the port)


def is_linux(platform: str = sys.platform) -> bool:
    return platform.startswith("linux")


def is_windows(platform: str = sys.platform) -> bool:
    return platform.startswith("win")


def unprivileged_port_start(
    path: Path = UNPRIVILEGED_PORT_START, platform: str = sys.platform
) -> int:
    """The first port anyone may bind: the kernel's setting on Linux, 1024 elsewhere.

    Windows has no privileged ports at all (0).
    """
    if is_windows(platform):
        return 0
    if not is_linux(platform):
        return CLASSIC_PRIVILEGED_LIMIT
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return CLASSIC_PRIVILEGED_LIMIT


def has_net_bind_capability(status_path: Path = PROC_STATUS) -> bool:
    """CAP_NET_BIND_SERVICE in this process's effective set (Linux only)."""
    try:
        for line in status_path.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_BIND_SERVICE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def effective_uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def is_root() -> bool:
    return effective_uid() == 0


_UNSET = object()


@dataclass(frozen=True)
class PortRights:
    """Whether this process may bind a port, and the rule that decided it."""

    port: int
    privileged: bool
    allowed: bool
    reason: str


def port_rights(
    port: int,
    *,
    start: int | None = None,
    uid: object = _UNSET,
    capability: bool | None = None,
) -> PortRights:
    """Decide with the kernel's rule; the keyword arguments inject the facts (tests).

    ``uid`` is the effective uid, or None where there is none (Windows).
    """
    start = unprivileged_port_start() if start is None else start
    if uid is _UNSET:
        uid = effective_uid()
    if port >= start:
        reason = f"port {port} is unprivileged here (ports from {start} need no privilege)"
        return PortRights(port, False, True, reason)
    if uid == 0:
        reason = f"port {port} is privileged (below {start}) and this process runs as root"
        return PortRights(port, True, True, reason)
    if has_net_bind_capability() if capability is None else capability:
        reason = (
            f"port {port} is privileged (below {start}) and this process has "
            "CAP_NET_BIND_SERVICE in its effective capabilities"
        )
        return PortRights(port, True, True, reason)
    who = f"uid {uid}" if uid is not None else "this user"
    reason = (
        f"port {port} is privileged (below {start}) and this process ({who}) is not root "
        "and lacks CAP_NET_BIND_SERVICE"
    )
    return PortRights(port, True, False, reason)


def needs_privilege(port: int) -> bool:
    return port < unprivileged_port_start()


def can_bind_port(port: int) -> bool:
    """Whether this process has the right to bind ``port`` (not whether it is free)."""
    return port_rights(port).allowed


def replit_internal_port(path: Path = REPLIT_FILE) -> int:
    """The ``localPort`` that ``.replit`` maps to ``externalPort = 80``."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_INTERNAL_PORT
    for entry in data.get("ports", []):
        if isinstance(entry, dict) and entry.get("externalPort") == 80:
            local = entry.get("localPort")
            if isinstance(local, int) and 0 < local < 65536:
                return local
    return DEFAULT_INTERNAL_PORT


def real_interpreter(executable: str = sys.executable) -> str:
    """The interpreter binary a capability must be set on (a venv's python is a symlink)."""
    return os.path.realpath(executable)


def privileged_port_fixes(port: int, app_port: int = DEFAULT_INTERNAL_PORT) -> list[str]:
    """Every way to serve on a privileged port, best first, each with its trade-off.

    Lines indented by four spaces or more are commands, printed unwrapped.
    """
    python = real_interpreter()
    symlinked = python != os.path.abspath(sys.executable)
    return [
        f"Keep the app on an unprivileged port (PORT={app_port}) and put a reverse proxy on "
        f"port {port}: deploy/nginx/flask-app.conf (the proxy also buffers slow clients and "
        "terminates TLS).",
        f"In a container, publish the port instead of binding it: docker run -p {port}:{app_port} "
        "... (the app keeps its unprivileged port inside).",
        "Under systemd, grant only this one right to the service: "
        "AmbientCapabilities=CAP_NET_BIND_SERVICE (deploy/systemd/flask-app.service).",
        f"Redirect the port in the kernel (root, once; not for connections from this machine "
        f"itself, and lost at reboot unless saved):\n"
        f"      iptables -t nat -A PREROUTING -p tcp --dport {port} -j REDIRECT --to-port {app_port}",
        "Give the interpreter the capability. It must be the real binary"
        + (f" ({sys.executable} is a symlink to it)" if symlinked else "")
        + ", and every script that interpreter runs gets the right; an upgrade of the binary "
        "drops it:\n"
        f"      sudo setcap 'cap_net_bind_service=+ep' {python}",
        "Last resort: run as root with sudo, which gives the whole app, and any bug in it, "
        "root's power.",
    ]


def privileged_port_message(port: int, host: str) -> str:
    rights = port_rights(port)
    fixes = "\n".join(f"  {n}. {fix}" for n, fix in enumerate(privileged_port_fixes(port), 1))
    return (
        f"Cannot listen on {host}:{port}: {rights.reason}, so the server would stop with "
        f"'PermissionError: [Errno 13] Permission denied'. Fixes, best first (docs/port-80.md "
        f"compares them):\n{fixes}"
    )


# --- who holds a port ------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def _port_inodes(port: int, proc_net: Path, states: Iterable[str]) -> list[str]:
    """Socket inodes bound to ``port`` in the given TCP states, from /proc/net/tcp{,6}."""
    wanted = set(states)
    inodes: list[str] = []
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc_net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10:
                continue
            local, state, inode = cols[1], cols[3], cols[9]
            try:
                local_port = int(local.rsplit(":", 1)[1], 16)
            except (IndexError, ValueError):
                continue
            if state in wanted and local_port == port and inode != "0":
                inodes.append(inode)
    return inodes


def find_holder(port: int, proc: Path = PROC) -> Holder | None:
    """The process listening on ``port`` (or else bound to it), where /proc lets us see it.

    Another user's /proc/PID/fd is unreadable without root: then None.
    """
    for states in ((TCP_LISTEN,), (TCP_CLOSE,)):
        inodes = _port_inodes(port, proc / "net", states)
        if inodes:
            holder = _owner_of({f"socket:[{i}]" for i in inodes}, proc)
            if holder:
                return holder
    return None


def _owner_of(targets: set[str], proc: Path) -> Holder | None:
    for entry in sorted(proc.iterdir(), key=lambda p: (not p.name.isdigit(), len(p.name), p.name)):
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    return Holder(int(entry.name), _command(entry))
            except OSError:
                continue
    return None


def _command(proc_entry: Path) -> str:
    """The holder's command line on one line (argv may hold newlines), shortened."""
    try:
        raw = (proc_entry / "cmdline").read_bytes()
    except OSError:
        return ""
    text = " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)
    text = " ".join(text.split())
    return text if len(text) <= 100 else text[:97] + "..."


def next_free_port(host: str, port: int, tries: int = 20) -> int | None:
    """The first port after ``port`` that binds on ``host``: something to suggest."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if can_bind_port(candidate) and _binds(host, candidate):
            return candidate
    return None


def _binds(host: str, port: int) -> bool:
    return try_bind(host, port) is None


def in_use_message(port: int, host: str, holder: Holder | None, suggestion: int | None) -> str:
    if holder:
        who = f"by {holder}"
        stop = f"stop it (kill {holder.pid}; often it is an earlier run of this app)"
    else:
        who = "by a process this user cannot see (another user's, or another container's)"
        stop = "stop that process"
    other = f"PORT={suggestion}" if suggestion else "PORT set to another free port"
    return (
        f"Cannot listen on {host}:{port}: port {port} is already in use {who}, so the server "
        f"would stop with 'OSError: [Errno 98] Address already in use'. Either {stop}, or start "
        f"on another port: {other} (and change whatever points at {port}). To see every "
        f"listener on it:\n"
        f"      ss -ltnp 'sport = :{port}'"
    )


# --- the pre-flight checks -------------------------------------------------------------


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def _bind_once(host: str, port: int) -> None:
    """Bind and close a socket exactly as the servers bind theirs."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            # As gunicorn, waitress and werkzeug do: lets a restart bind while old
            # connections sit in TIME_WAIT, so TIME_WAIT is not reported as "in use".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    finally:
        sock.close()


def check_rights(host: str, port: int) -> None:
    """Raise BindError when this process may not bind ``port`` (Linux: decided, not tried)."""
    if is_linux() and not can_bind_port(port):
        raise BindError(privileged_port_message(port, host))


def try_bind(host: str, port: int) -> OSError | None:
    """Bind and close as the servers would; the error, or None when the bind worked."""
    try:
        _bind_once(host, port)
    except OSError as exc:
        return exc
    return None


def explain_bind_error(host: str, port: int, exc: OSError) -> str:
    """The paragraph for a failed bind: in use, no right, or not an address of ours."""
    if exc.errno == errno.EADDRINUSE:
        return in_use_message(port, host, find_holder(port), next_free_port(host, port))
    if exc.errno == errno.EACCES:
        # macOS and the BSDs: their rule is not readable, so the bind itself decides.
        return privileged_port_message(port, host)
    if isinstance(exc, socket.gaierror):
        return (
            f"Cannot listen on {host}:{port}: the host name {host!r} does not resolve "
            f"({exc.strerror}). Set HOST to an IP address such as 0.0.0.0."
        )
    if exc.errno in (errno.EADDRNOTAVAIL, getattr(errno, "EAFNOSUPPORT", -1)):
        return (
            f"Cannot listen on {host}:{port}: {host} is not an address of this machine "
            f"({exc.strerror}). Use HOST=0.0.0.0 for every interface or HOST=127.0.0.1 for "
            "this machine only."
        )
    return f"Cannot listen on {host}:{port}: {exc.strerror or exc}."


def check_free(host: str, port: int) -> None:
    """Raise BindError when the pre-flight bind fails: in use, wrong address, no right."""
    exc = try_bind(host, port)
    if exc is not None:
        raise BindError(explain_bind_error(host, port, exc))


def check_bind(host: str, port: int) -> None:
    """Before any server starts: the right to bind, then a real bind, or BindError.

    Not in Werkzeug's reloader child, whose parent already bound the socket
    (launchers.run skips it there).
    """
    check_rights(host, port)
    check_free(host, port)
