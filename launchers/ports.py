"""Port rules, in one place for every launcher.

Binding a port below the kernel's ``ip_unprivileged_port_start`` (1024 unless
changed; Docker sets it to 0 inside containers) needs root or the
CAP_NET_BIND_SERVICE capability. Servers report the failure as a bare
``PermissionError: [Errno 13]`` traceback, or (gunicorn) retry for five
seconds first; we check before any server starts and say what to do instead.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from launchers.errors import BindError

UNPRIVILEGED_PORT_START = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
PROC_STATUS = Path("/proc/self/status")
CAP_NET_BIND_SERVICE = 10
REPLIT_FILE = Path(__file__).resolve().parent.parent / ".replit"
DEFAULT_INTERNAL_PORT = 5000


def unprivileged_port_start(path: Path = UNPRIVILEGED_PORT_START) -> int:
    """The first port anyone may bind (Linux), 1024 elsewhere."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 1024


def has_net_bind_capability(status_path: Path = PROC_STATUS) -> bool:
    """CAP_NET_BIND_SERVICE in this process's effective set (Linux only)."""
    try:
        for line in status_path.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_BIND_SERVICE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def needs_privilege(port: int) -> bool:
    if sys.platform.startswith("win"):
        return False  # Windows has no privileged ports
    return port < unprivileged_port_start()


def can_bind_port(port: int) -> bool:
    """Whether this process has the right to bind ``port`` (not whether it is free)."""
    return not needs_privilege(port) or is_root() or has_net_bind_capability()


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


def real_interpreter() -> str:
    """The interpreter binary a capability must be set on (a venv's python is a symlink)."""
    return os.path.realpath(sys.executable)


def privileged_port_message(port: int, host: str) -> str:
    start = unprivileged_port_start()
    python = real_interpreter()
    return (
        f"Cannot listen on port {port}: ports below {start} are privileged on this machine, and "
        f"this process (uid {os.geteuid() if hasattr(os, 'geteuid') else '?'}) is not root and "
        f"lacks CAP_NET_BIND_SERVICE. Fixes, best first:\n"
        f"  1. Keep the app on an unprivileged port (PORT=5000, or 8000 behind a proxy) and put a "
        f"reverse proxy on port {port}: see deploy/nginx/flask-app.conf and docs/port-80.md.\n"
        f"  2. In a container, map the port instead: docker run -p {port}:5000 ...\n"
        f"  3. Under systemd, grant only this right: AmbientCapabilities=CAP_NET_BIND_SERVICE "
        f"(deploy/systemd/flask-app.service shows how).\n"
        f"  4. Redirect the port in the kernel: iptables -t nat -A PREROUTING -p tcp --dport {port} "
        f"-j REDIRECT --to-port 5000 (does not cover connections from this machine itself).\n"
        f"  5. Give the interpreter the capability: sudo setcap 'cap_net_bind_service=+ep' {python} "
        f"(the real binary, not the venv symlink; every script that interpreter runs gets it).\n"
        f"  6. Last resort: run as root with sudo, which gives the whole app root's power."
    )


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def _listening_inodes(port: int, proc_net: Path = Path("/proc/net")) -> set[str]:
    inodes: set[str] = set()
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
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def find_holder(port: int, proc: Path = Path("/proc")) -> Holder | None:
    """The process listening on ``port``, where /proc lets us see it."""
    inodes = _listening_inodes(port, proc / "net")
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return Holder(int(entry.name), _command(entry))
        except OSError:
            continue
    return None


def _command(proc_entry: Path) -> str:
    try:
        raw = (proc_entry / "cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)[:120]


def in_use_message(port: int, host: str, holder: Holder | None) -> str:
    who = f" by {holder}" if holder else " by another process (not visible to this user)"
    stop = f" stop it (kill {holder.pid})," if holder else " stop that process,"
    return (
        f"Cannot listen on {host}:{port}: the port is already in use{who}. Either{stop} or "
        f"choose another port: PORT={port + 1 if port < 65535 else 5000} python main.py. "
        f"To see what holds it: ss -ltnp 'sport = :{port}'."
    )


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def check_bind(host: str, port: int) -> None:
    """Bind and close a socket the way the servers will, or raise BindError."""
    if not can_bind_port(port):
        raise BindError(privileged_port_message(port, host))
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            # As the servers do: lets a restart bind while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BindError(in_use_message(port, host, find_holder(port))) from None
        if exc.errno == errno.EACCES:
            raise BindError(privileged_port_message(port, host)) from None
        if exc.errno in (errno.EADDRNOTAVAIL, getattr(errno, "EAFNOSUPPORT", -1)):
            raise BindError(
                f"Cannot listen on {host}:{port}: {host} is not an address of this machine "
                f"({exc.strerror}). Use HOST=0.0.0.0 for every interface or HOST=127.0.0.1 for "
                "this machine only."
            ) from None
        if isinstance(exc, socket.gaierror):
            raise BindError(
                f"Cannot listen on {host}:{port}: the host name {host!r} does not resolve "
                f"({exc.strerror}). Set HOST to an IP address such as 0.0.0.0."
            ) from None
        raise BindError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    finally:
        sock.close()
