"""How many CPUs this process may really use.

``os.cpu_count()`` is the host's count: in a container limited to one CPU on a
64-core host it says 64, and a worker count derived from it starts 129
processes that fight over one core (gunicorn#2877). The real limit is the
smaller of the CPU affinity mask and the cgroup CPU quota, rounded up.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _affinity_count(sched_getaffinity: Callable[[int], set] | None) -> int | None:
    if sched_getaffinity is None:
        return None
    try:
        return len(sched_getaffinity(0)) or None
    except OSError:
        return None


def _v2_quota(text: str | None) -> float | None:
    """``cpu.max`` holds "QUOTA PERIOD" or "max PERIOD"."""
    if not text:
        return None
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(quota_text: str | None, period_text: str | None) -> float | None:
    """``cpu.cfs_quota_us`` is -1 when unlimited."""
    try:
        quota, period = int(quota_text or ""), int(period_text or "")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _ancestors(root: Path, relative: str) -> list[Path]:
    """The cgroup directory and each parent up to the mount root.

    A limit may be set on any ancestor. Inside a container the path in
    /proc/self/cgroup may not exist under the namespaced mount, so the mount
    root itself is always included.
    """
    parts = [p for p in relative.strip("/").split("/") if p]
    dirs = [root.joinpath(*parts[:i]) for i in range(len(parts), 0, -1)]
    dirs.append(root)
    return dirs


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP
) -> float | None:
    """The CPU quota of this process's cgroup (v2 or v1), or None if unlimited."""
    membership = _read(proc_self_cgroup) or ""
    limits: list[float] = []
    for line in membership.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            for d in _ancestors(cgroup_root, path):
                q = _v2_quota(_read(d / "cpu.max"))
                if q is not None:
                    limits.append(q)
        elif "cpu" in controllers.split(","):
            mount = cgroup_root / controllers
            if not mount.is_dir():
                mount = cgroup_root / "cpu"
            for d in _ancestors(mount, path):
                q = _v1_quota(_read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us"))
                if q is not None:
                    limits.append(q)
    return min(limits) if limits else None


_SCHED_GETAFFINITY = getattr(os, "sched_getaffinity", None)  # absent on macOS and Windows


def usable_cpus(
    *,
    sched_getaffinity: Callable[[int], set] | None = _SCHED_GETAFFINITY,
    cpu_count: Callable[[], int | None] = os.cpu_count,
    cgroup_root: Path = CGROUP_ROOT,
    proc_self_cgroup: Path = PROC_SELF_CGROUP,
) -> int:
    """The number of CPUs this process can keep busy at once, at least 1."""
    count = _affinity_count(sched_getaffinity) or cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root, proc_self_cgroup)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)
