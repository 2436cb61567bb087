"""Servers as subprocesses: start one on a loopback port, time its cold start, read its
memory and CPU from /proc, and always stop it by its pid."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEALTHZ = "/healthz"  # the route every app under test answers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_200(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", HEALTHZ)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@dataclass
class Server:
    """One server process in its own session; its stderr kept for error messages."""

    argv: Sequence[str]
    env: Mapping[str, str]
    port: int
    proc: subprocess.Popen | None = None
    cold_start_s: float | None = None
    exit_code: int | None = None
    _stderr: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HEALTHZ}"

    def start(self, timeout: float = 30.0) -> None:
        """Spawn it and poll every 5 ms until the first 200: the cold start."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            list(self.argv),
            env=dict(self.env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the access log: written, as in production, not kept
            stderr=self._stderr,
            start_new_session=True,  # so that stop() can reach its workers too
        )
        while time.perf_counter() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(self.argv)} exited with {self.proc.returncode} before it "
                    f"answered:\n{self.stderr_tail()}"
                )
            if answers_200(self.port):
                self.cold_start_s = time.perf_counter() - began
                return
            time.sleep(0.005)
        raise RuntimeError(f"{' '.join(self.argv)} did not answer in {timeout} s")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stderr_tail(self, lines: int = 20) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return "\n".join(self._stderr.read().decode(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to its pid, a bounded wait, then SIGKILL to whatever is left of its session.

        A Ctrl-C or SIGTERM to the bench during the wait goes straight to the SIGKILL.
        """
        if self.proc is not None:
            try:
                if self.proc.poll() is None:
                    self.proc.send_signal(signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=grace)
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # workers that outlived their master
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5)
                self.exit_code = self.proc.returncode
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


@contextlib.contextmanager
def running(argv: Sequence[str], env: Mapping[str, str], port: int) -> Iterator[Server]:
    """A started server, stopped on the way out whatever happens: errors, Ctrl-C, SIGTERM."""
    server = Server(argv, env, port)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """pid and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name)
                )
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU of these live processes."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def cpu_split(pids: Sequence[int]) -> tuple[float, float]:
    """CPU seconds so far of (the server's processes, every other program but this bench).

    The difference of two readings around a wrk run says what the server used and
    whether another program competed for the CPUs meanwhile. The bench's share
    includes its reaped children: the wrk runs.
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    machine_busy = (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # all but idle, iowait
    t = os.times()
    bench = t.user + t.system + t.children_user + t.children_system
    server = cpu_seconds(pids)
    return server, machine_busy - server - bench


def memory(pids: Sequence[int]) -> dict:
    """RSS of each process, in MiB, and the PSS total, which counts shared pages once."""
    rss, pss_kib = [], 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss.append(round(int(line.split()[1]) / 1024, 1))
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kib += int(line.split()[1])
    return {
        "processes": len(rss),
        "rss_mib_each": rss,
        "rss_mib_total": round(sum(rss), 1),
        "pss_mib_total": round(pss_kib / 1024, 1),
    }
