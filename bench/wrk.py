"""Drive Debian's ``wrk`` against a loopback URL and read its figures (via report.lua)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("report.lua")
INSTALL_HINT = (
    "wrk is not installed. The bench needs Debian's wrk (HTTP load generator): "
    "sudo apt-get install -y wrk"
)


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if not path:
        raise WrkMissing(INSTALL_HINT)
    return path


def version() -> str:
    out = subprocess.run(
        [wrk_path(), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return (out.stdout or out.stderr).split("Copyright")[0].strip()


@dataclass(frozen=True)
class Load:
    connections: int
    keepalive: bool  # False: a new connection per request (Connection: close)

    @property
    def key(self) -> str:
        return f"c{self.connections}-{'keepalive' if self.keepalive else 'close'}"


@dataclass
class Run:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors (connect, read, write, timeout) plus non-2xx/3xx answers
    error_detail: dict

    def as_dict(self) -> dict:
        return asdict(self)


def run(url: str, load: Load, seconds: int) -> Run:
    """One wrk run of ``seconds`` of load, killed if it overstays by 15 s."""
    args = [wrk_path(), "-t1", f"-c{load.connections}", f"-d{max(1, int(seconds))}s"]
    args += ["--timeout", "2s", "-s", str(SCRIPT)]
    if not load.keepalive:
        args += ["-H", "Connection: close"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 15, check=False
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    data = json.loads(line.split(" ", 1)[1])
    detail = {k: data[k] for k in ("connect", "read", "write", "timeout", "status")}
    secs = data["duration_us"] / 1e6
    return Run(
        requests=data["requests"],
        seconds=round(secs, 3),
        rps=round(data["requests"] / secs, 1) if secs else 0.0,
        p50_ms=round(data["p50_us"] / 1000, 2),
        p99_ms=round(data["p99_us"] / 1000, 2),
        max_ms=round(data["max_us"] / 1000, 2),
        errors=sum(detail.values()),
        error_detail=detail,
    )
