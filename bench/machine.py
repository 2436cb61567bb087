"""What the bench ran on: CPUs, kernel, versions; and whether something else is busy."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("flask", "werkzeug", "gunicorn", "gevent", "waitress", "granian", "gunicorn_h1c")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict:
    from bench.wrk import wrk_version
    from launchers.cpus import usable_cpus

    return {
        "nproc": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "wrk": wrk_version(),
    }


def busy_note() -> str:
    """A warning when the machine is not idle: the figures would be skewed."""
    notes = []
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        notes.append(f"load average {load1:.2f}")
    out = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True, check=False)
    others = [p for p in out.stdout.split() if int(p) not in (os.getpid(), os.getppid())]
    if others:
        notes.append(f"pytest is running (pid {', '.join(others)})")
    if notes:
        return "the machine is busy (" + "; ".join(notes) + "): figures will be skewed"
    return ""
