"""What ``python main.py doctor`` knows of the machine (``Facts``, read once by
``gather`` and made up by tests) and how it reports (``Finding``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

from launchers import ports
from settings import PROJECT_ROOT, Settings, registry
from settings.errors import Problem
from settings.replit import REPLIT_FILE

Level = Literal["ok", "warning", "problem"]
OK: Level = "ok"
WARNING: Level = "warning"
PROBLEM: Level = "problem"
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    text: str
    fix: str = ""

    @classmethod
    def of(cls, problem: Problem, level: Level = PROBLEM) -> Finding:
        return cls(level, problem.check, problem.text, problem.fix.strip("\n"))


@dataclass(frozen=True)
class Facts:
    """What doctor knows about the machine: read once by ``gather``, made up by tests."""

    environ: Mapping[str, str]
    platform: str = sys.platform
    uid: int | None = None
    proc_version: str = ""
    cgroup: str = ""
    container_files: tuple[str, ...] = ()
    unprivileged_start: int = 1024
    net_bind_capability: bool = False
    versions: Mapping[str, str | None] = field(default_factory=dict)
    replit_file: Path = REPLIT_FILE
    requirements: Path = REQUIREMENTS

    @property
    def on_replit(self) -> bool:
        return bool(self.environ.get("REPL_ID")) or self.environ.get("REPLIT_DEPLOYMENT") == "1"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def gather(environ: Mapping[str, str] | None = None) -> Facts:
    pins = pinned_versions(REQUIREMENTS)
    packages = set(pins) | {spec.package for spec in registry.LAUNCHERS.values()}
    return Facts(
        environ=dict(os.environ if environ is None else environ),
        uid=ports.effective_uid(),
        proc_version=_read(Path("/proc/version")),
        cgroup=_read(Path("/proc/1/cgroup")) + _read(Path("/proc/self/cgroup")),
        container_files=tuple(p for p in ("/.dockerenv", "/run/.containerenv") if Path(p).exists()),
        unprivileged_start=ports.unprivileged_port_start(),
        net_bind_capability=ports.has_net_bind_capability(),
        versions={name: installed_version(name) for name in sorted(packages)},
    )


def rights(settings: Settings, facts: Facts) -> ports.PortRights:
    start = 0 if registry.is_windows(facts.platform) else facts.unprivileged_start
    return ports.port_rights(
        settings.port, start=start, uid=facts.uid, capability=facts.net_bind_capability
    )


def pinned_versions(requirements: Path) -> dict[str, str]:
    """``name -> version`` for each ``name==version`` line (markers ignored)."""
    pins = {}
    for line in _read(requirements).splitlines():
        spec = line.split("#")[0].split(";")[0].strip().rstrip("\\").strip()
        name, sep, version = spec.partition("==")
        if sep:
            pins[name.split("[")[0].strip().lower()] = version.strip()
    return pins


CONTAINER_CGROUP_WORDS = ("docker", "kubepods", "containerd", "libpod", "lxc", "podman")


def container_evidence(facts: Facts) -> str:
    """Why we think this is a container, or "" when nothing says so."""
    if facts.container_files:
        return facts.container_files[0]
    if facts.environ.get("container"):
        return f"container={facts.environ['container']}"
    if facts.environ.get("KUBERNETES_SERVICE_HOST"):
        return "KUBERNETES_SERVICE_HOST"
    lowered = facts.cgroup.lower()
    return next(
        (f"/proc/1/cgroup mentions {w}" for w in CONTAINER_CGROUP_WORDS if w in lowered), ""
    )


def in_container(facts: Facts) -> bool:
    return bool(container_evidence(facts))


def describe_platform(facts: Facts, internal: int, port: int) -> list[str]:
    """One note per platform recognised (several may hold at once)."""
    env = facts.environ
    notes = []
    if env.get("REPLIT_DEPLOYMENT") == "1":
        notes.append(
            "a Replit deployment (REPLIT_DEPLOYMENT=1): production by default; Replit routes "
            f"external port 80 to localPort {internal} of .replit, which must listen on 0.0.0.0; "
            "a privileged PORT is replaced by it; a stop is SIGTERM, then a kill after about 10 s"
        )
    elif env.get("REPL_ID"):
        notes.append(
            "a Replit workspace (REPL_ID set): the Run button starts the development server; "
            f"the Preview shows the port .replit maps to 80 (localPort {internal}); the deploy "
            "button runs [deployment] run instead"
        )
    evidence = container_evidence(facts)
    if evidence:
        notes.append(
            f"a container ({evidence}): publish the port (docker run -p 80:{port}) rather than "
            f"binding 80 (ports below {facts.unprivileged_start} are privileged here); HOST must "
            "not be loopback; only PID 1 gets SIGTERM, so the server must be exec'd"
        )
    if env.get("INVOCATION_ID"):
        notes.append(
            "a systemd service (INVOCATION_ID set): stopped by SIGTERM, killed after "
            "TimeoutStopSec (90 s unless set), so keep GRACEFUL_TIMEOUT below it; a privileged "
            "port needs AmbientCapabilities=CAP_NET_BIND_SERVICE"
        )
    if env.get("DYNO"):
        notes.append(
            f"a Heroku-style dyno (DYNO={env['DYNO']}): the platform sets PORT and routes to "
            "0.0.0.0:$PORT; after SIGTERM it kills the process at 30 s"
        )
    if registry.is_windows(facts.platform):
        notes.append(
            "Windows: gunicorn cannot run (no fork), so auto picks waitress in production; "
            "Windows has no privileged ports"
        )
    if "microsoft" in facts.proc_version.lower():
        notes.append(
            "WSL (/proc/version mentions Microsoft): Windows reaches the app on localhost; other "
            "machines need HOST=0.0.0.0 and a port proxy on Windows (netsh interface portproxy) "
            "or WSL's mirrored networking"
        )
    if not notes:
        kind = {"linux": "Linux", "darwin": "macOS"}.get(facts.platform, facts.platform)
        notes.append(f"{kind}, no container, service manager or hosting platform detected")
    return notes
