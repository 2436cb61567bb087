"""How many CPUs this process may really use: the default worker count.

``os.cpu_count()`` is the host's count: in a container limited to one CPU on a
64-core host it says 64, and a worker count derived from it starts processes
that fight over one core (gunicorn#2877). The real limit is the smaller of the
CPU affinity mask and the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_*``),
rounded up, on this process's cgroup or any ancestor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
SCHED_GETAFFINITY = getattr(os, "sched_getaffinity", None)  # absent off Linux


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _quota(quota: str, period: str) -> float | None:
    """CPUs a quota allows: v2 writes "max" and v1 "-1" when there is none."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _v2_quota(directory: Path) -> float | None:
    parts = _read(directory / "cpu.max").split()
    return _quota(*parts) if len(parts) == 2 else None


def _v1_quota(directory: Path) -> float | None:
    return _quota(_read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us"))


def _ancestors(root: Path, relative: str) -> list[Path]:
    """The cgroup directory and each parent up to the mount root, which is always
    included: inside a container the path in /proc/self/cgroup may not exist there."""
    parts = [p for p in relative.strip("/").split("/") if p]
    return [root.joinpath(*parts[:i]) for i in range(len(parts), 0, -1)] + [root]


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP
) -> float | None:
    """The CPU quota of this process's cgroup (v2 or v1), or None if unlimited."""
    limits = []
    for line in _read(proc_self_cgroup).splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            limits += [_v2_quota(d) for d in _ancestors(cgroup_root, path)]
        elif "cpu" in controllers.split(","):
            mount = cgroup_root / controllers
            mount = mount if mount.is_dir() else cgroup_root / "cpu"
            limits += [_v1_quota(d) for d in _ancestors(mount, path)]
    found = [q for q in limits if q is not None]
    return min(found) if found else None


def usable_cpus(
    *,
    sched_getaffinity: Callable[[int], set] | None = SCHED_GETAFFINITY,
    cpu_count: Callable[[], int | None] = os.cpu_count,
    cgroup_root: Path = CGROUP_ROOT,
    proc_self_cgroup: Path = PROC_SELF_CGROUP,
) -> int:
    """The number of CPUs this process can keep busy at once, at least 1."""
    try:
        count = len(sched_getaffinity(0)) if sched_getaffinity else 0
    except OSError:
        count = 0
    count = count or cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root, proc_self_cgroup)
    return max(1, min(count, math.ceil(quota)) if quota is not None else count)
