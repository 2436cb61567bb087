"""What the bench ran on: CPUs, memory, system, versions."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from pathlib import Path

from bench import project, wrk

PACKAGES = ("flask", "werkzeug", "gunicorn", "gevent", "waitress", "granian")


def _field(path: str, prefix: str, sep: str = ":") -> str | None:
    """The value of the first line of ``path`` that starts with ``prefix``."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(sep, 1)[1].strip().strip('"')
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict:
    mem_kib = _field("/proc/meminfo", "MemTotal:")
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": project.usable_cpus(),
        "cpu_model": _field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "memory_gib": round(int(mem_kib.split()[0]) / 1024**2, 1) if mem_kib else None,
        "kernel": platform.release(),
        "os": _field("/etc/os-release", "PRETTY_NAME=", "=") or platform.system(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "wrk": wrk.version(),
    }
