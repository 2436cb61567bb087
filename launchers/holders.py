"""Who holds a port: the listening (or bound) socket's inode in /proc/net/tcp{,6},
then the process whose /proc/PID/fd points at it.

Each function takes the /proc it reads as a parameter, so tests can make one up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"  # socket states in /proc/net/tcp
TCP_CLOSE = "07"  # bound but not listening (still holds the port)


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
