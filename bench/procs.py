"""Start a server as a subprocess, time its cold start, read its RSS and CPU, stop it by pid."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_200(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


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


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU of these live processes."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def memory(pids: Sequence[int]) -> dict:
    """RSS of each process (MiB) and the PSS total, which counts shared pages once."""
    rss, pss = [], 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss.append(round(int(line.split()[1]) / 1024, 1))
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return {
        "processes": len(rss),
        "rss_mib_each": rss,
        "rss_mib_total": round(sum(rss), 1),
        "pss_mib_total": round(pss / 1024, 1),
    }


@dataclass
class Server:
    """One server process in its own session; output kept in a temporary file."""

    args: Sequence[str]
    env: Mapping[str, str]
    port: int
    path: str = "/healthz"
    proc: subprocess.Popen | None = None
    started: float = 0.0
    cold_start_s: float | None = None
    _log: object = field(default=None, repr=False)

    def start(self) -> Server:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(self.args),
            env=dict(self.env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the access log: written, not kept
            stderr=self._log,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds from spawn to the first 200, polled every 5 ms."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(self.args)} exited with {self.proc.returncode} before it "
                    f"answered:\n{self.log_tail()}"
                )
            if answers_200(self.port, self.path):
                self.cold_start_s = time.perf_counter() - self.started
                return self.cold_start_s
            time.sleep(0.005)
        raise RuntimeError(
            f"{' '.join(self.args)} did not answer in {timeout}s:\n{self.log_tail()}"
        )

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM to the server's pid, bounded wait, then SIGKILL to its whole session."""
        if self.proc is None:
            return None
        code = None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left of it, workers included
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code if code is not None else self.proc.returncode


def system_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (/proc/stat), for all processes."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU of this process and of its reaped children (wrk runs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def other_tests_running() -> list[int]:
    """pids of pytest runs that are not this process or one of its ancestors."""
    ancestors, pid = set(), os.getpid()
    while pid > 1:
        ancestors.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in ancestors:
            with contextlib.suppress(OSError):
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
                if any(part.endswith(b"pytest") for part in cmd[:4]):
                    found.append(int(entry.name))
    return found
