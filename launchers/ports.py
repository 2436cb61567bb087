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
from dataclasses import dataclass
from pathlib import Path

from launchers.holders import Holder, find_holder
from settings.errors import BindError, Problem
from settings.registry import is_windows
from settings.replit import DEFAULT_INTERNAL_PORT

UNPRIVILEGED_PORT_START = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
PROC_STATUS = Path("/proc/self/status")
CAP_NET_BIND_SERVICE = 10
CLASSIC_PRIVILEGED_LIMIT = 1024


def is_linux(platform: str = sys.platform) -> bool:
    return platform.startswith("linux")


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


def can_bind_port(port: int) -> bool:
    """Whether this process has the right to bind ``port`` (not whether it is free)."""
    return port_rights(port).allowed


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


def _problem(check: str, text: str, fix: str) -> Problem:
    return Problem(check, BindError, text, fix)


def privileged_port_problem(host: str, rights: PortRights) -> Problem:
    fixes = "\n".join(
        f"  {n}. {fix}" for n, fix in enumerate(privileged_port_fixes(rights.port), 1)
    )
    return _problem(
        "port",
        f"Cannot listen on {host}:{rights.port}: {rights.reason}, so the server would stop with "
        "'PermissionError: [Errno 13] Permission denied'.",
        f"Fixes, best first (docs/port-80.md compares them):\n{fixes}",
    )


def next_free_port(host: str, port: int, tries: int = 20) -> int | None:
    """The first port after ``port`` that binds on ``host``: something to suggest."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if can_bind_port(candidate) and _binds(host, candidate):
            return candidate
    return None


def _binds(host: str, port: int) -> bool:
    return try_bind(host, port) is None


def in_use_problem(host: str, port: int, holder: Holder | None, suggestion: int | None) -> Problem:
    if holder:
        who = f"by {holder}"
        stop = f"stop it (kill {holder.pid}; often it is an earlier run of this app)"
    else:
        who = "by a process this user cannot see (another user's, or another container's)"
        stop = "stop that process"
    other = f"PORT={suggestion}" if suggestion else "PORT set to another free port"
    return _problem(
        "port",
        f"Cannot listen on {host}:{port}: port {port} is already in use {who}, so the server "
        "would stop with 'OSError: [Errno 98] Address already in use'.",
        f"Either {stop}, or start on another port: {other} (and change whatever points at "
        f"{port}). To see every listener on it:\n      ss -ltnp 'sport = :{port}'",
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


def try_bind(host: str, port: int) -> OSError | None:
    """Bind and close as the servers would; the error, or None when the bind worked."""
    try:
        _bind_once(host, port)
    except OSError as exc:
        return exc
    return None


def bind_problem(host: str, port: int, exc: OSError) -> Problem:
    """Why a bind failed: in use, no right, or not an address of this machine."""
    if exc.errno == errno.EADDRINUSE:
        return in_use_problem(host, port, find_holder(port), next_free_port(host, port))
    if exc.errno == errno.EACCES:
        # macOS and the BSDs: their rule is not readable, so the bind itself decides.
        return privileged_port_problem(host, port_rights(port))
    if isinstance(exc, socket.gaierror):
        return _problem(
            "address",
            f"Cannot listen on {host}:{port}: the host name {host!r} does not resolve "
            f"({exc.strerror}).",
            "Set HOST to an IP address such as 0.0.0.0.",
        )
    if exc.errno in (errno.EADDRNOTAVAIL, getattr(errno, "EAFNOSUPPORT", -1)):
        return _problem(
            "address",
            f"Cannot listen on {host}:{port}: {host} is not an address of this machine "
            f"({exc.strerror}).",
            "Use HOST=0.0.0.0 for every interface or HOST=127.0.0.1 for this machine only.",
        )
    return _problem("port", f"Cannot listen on {host}:{port}: {exc.strerror or exc}.", "")
