"""``python main.py doctor``: what on this machine would stop the app starting or being reached.

One line per check, marked ``ok``, ``warning`` or ``problem``; every warning and
problem is followed by its fix. The exit code is 0 when nothing would stop the
server, 1 otherwise (a warning never fails: it is about reach or safety, not start).

Each check is a small function of the settings and of ``Facts`` (read from the
machine once, by ``gather``), returning ``Finding``s, so the tests can hand
them any machine they like. The port rules come from ``launchers.ports``, the
cross-setting rules from ``launchers.settings``: doctor reports the same
decisions the launchers make, it does not make its own.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from launchers import ports, registry
from launchers.errors import ConfigError
from launchers.settings import (
    Settings,
    is_loopback,
    load_settings,
    violations,
)

Level = Literal["ok", "warning", "problem"]
OK: Level = "ok"
WARNING: Level = "warning"
PROBLEM: Level = "problem"

# The oldest releases with no published security advisory against them (2026-11-22).
MINIMUM_VERSIONS: Mapping[str, str] = {
    "flask": "3.1.3",
    "werkzeug": "3.1.6",
    "gunicorn": "23.0.0",
    "waitress": "3.0.1",
}
DISPLAY_NAMES = {"flask": "Flask", "werkzeug": "Werkzeug", "gunicorn": "gunicorn"}
CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))
CONTAINER_CGROUP_WORDS = ("docker", "kubepods", "containerd", "libpod", "lxc", "podman")
DEPLOY_SCRIPT = "flask_deploy.sh"


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    text: str
    fix: str = ""


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
    interpreter: str = sys.executable
    versions: Mapping[str, str | None] = field(default_factory=dict)
    replit_file: Path = ports.REPLIT_FILE

    @property
    def replit_deployment(self) -> bool:
        return self.environ.get("REPLIT_DEPLOYMENT", "").strip() == "1"

    @property
    def replit_workspace(self) -> bool:
        return bool(self.environ.get("REPL_ID")) and not self.replit_deployment

    @property
    def on_replit(self) -> bool:
        return self.replit_deployment or self.replit_workspace


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
    environ = dict(os.environ if environ is None else environ)
    packages = set(MINIMUM_VERSIONS) | {spec.package for spec in registry.LAUNCHERS.values()}
    return Facts(
        environ=environ,
        platform=sys.platform,
        uid=ports.effective_uid(),
        proc_version=_read(Path("/proc/version")),
        cgroup=_read(Path("/proc/1/cgroup")) + _read(Path("/proc/self/cgroup")),
        container_files=tuple(str(p) for p in CONTAINER_MARKERS if p.exists()),
        unprivileged_start=ports.unprivileged_port_start(),
        net_bind_capability=ports.has_net_bind_capability(),
        interpreter=sys.executable,
        versions={name: installed_version(name) for name in sorted(packages)},
        replit_file=ports.REPLIT_FILE,
    )


def _is_every_interface(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# --- platform ------------------------------------------------------------------------


def container_evidence(facts: Facts) -> str:
    """Why we think this is a container, or "" when nothing says so."""
    if facts.container_files:
        return facts.container_files[0]
    if facts.environ.get("container"):
        return f"container={facts.environ['container']}"
    if facts.environ.get("KUBERNETES_SERVICE_HOST"):
        return "KUBERNETES_SERVICE_HOST"
    lowered = facts.cgroup.lower()
    for word in CONTAINER_CGROUP_WORDS:
        if word in lowered:
            return f"/proc/1/cgroup mentions {word}"
    return ""


def check_platform(facts: Facts, settings: Settings | None = None) -> list[Finding]:
    """Where we run, and what that means for reaching the app."""
    port = settings.port if settings else ports.DEFAULT_INTERNAL_PORT
    internal = ports.replit_internal_port(facts.replit_file)
    found: list[Finding] = []

    def note(text: str) -> None:
        found.append(Finding(OK, "platform", text))

    if facts.replit_deployment:
        note(
            "a Replit deployment (REPLIT_DEPLOYMENT=1): production by default; Replit routes "
            f"external port 80 to localPort {internal} of .replit, which must listen on 0.0.0.0; "
            "a privileged PORT is replaced by it; a stop is SIGTERM, then a kill after about 10 s"
        )
    elif facts.replit_workspace:
        note(
            "a Replit workspace (REPL_ID set): the Run button starts the development server; "
            f"the Preview shows the port .replit maps to 80 (localPort {internal}); the deploy "
            "button runs [deployment] run instead"
        )
    evidence = container_evidence(facts)
    if evidence:
        note(
            f"a container ({evidence}): publish the port (docker run -p 80:{port}) rather than "
            f"binding 80 (ports below {facts.unprivileged_start} are privileged here); HOST must "
            "not be loopback; only PID 1 gets SIGTERM, so the server must be exec'd"
        )
    if facts.environ.get("INVOCATION_ID"):
        note(
            "a systemd service (INVOCATION_ID set): stopped by SIGTERM, killed after "
            "TimeoutStopSec (90 s unless set), so keep GRACEFUL_TIMEOUT below it; a privileged "
            "port needs AmbientCapabilities=CAP_NET_BIND_SERVICE"
        )
    if facts.environ.get("DYNO"):
        note(
            f"a Heroku-style dyno (DYNO={facts.environ['DYNO']}): the platform sets PORT and "
            "routes to 0.0.0.0:$PORT; after SIGTERM it kills the process at 30 s"
        )
    if ports.is_windows(facts.platform):
        note(
            "Windows: gunicorn cannot run (no fork), so auto picks waitress in production; "
            "Windows has no privileged ports"
        )
    if "microsoft" in facts.proc_version.lower():
        note(
            "WSL (/proc/version mentions Microsoft): Windows reaches the app on localhost; other "
            "machines need HOST=0.0.0.0 and a port proxy on Windows (netsh interface portproxy) "
            "or WSL's mirrored networking"
        )
    if not found:
        kind = {"linux": "Linux", "darwin": "macOS"}.get(facts.platform, facts.platform)
        note(f"{kind}, no container, service manager or hosting platform detected")
    return found


# --- launcher --------------------------------------------------------------------------


def check_launcher(settings: Settings, facts: Facts) -> Finding:
    name = settings.launcher
    if settings.launcher_choice == "auto":
        _, why = registry.resolve_auto(settings.env, facts.platform)
        chosen = f"auto chooses {name} ({why})"
    else:
        chosen = f"APP_LAUNCHER={name} (from {settings.source('APP_LAUNCHER')})"
    spec = registry.LAUNCHERS.get(name)
    if spec is None:
        return Finding(PROBLEM, "launcher", f"{chosen}, which is not in the registry")
    if spec.posix_only and ports.is_windows(facts.platform):
        return Finding(
            PROBLEM,
            "launcher",
            f"{chosen}, but {name} cannot run on Windows (it needs fork and fcntl)",
            "APP_LAUNCHER=waitress, or auto (waitress on Windows)",
        )
    package = spec.package.split("[")[0]
    version = facts.versions.get(package)
    if version is None:
        return Finding(
            PROBLEM,
            "launcher",
            f"{chosen}, but the package {package!r} is not installed in this Python",
            f"{facts.interpreter} -m pip install -r requirements.txt "
            f"(or pip install {spec.package}), or choose another launcher",
        )
    return Finding(OK, "launcher", f"{chosen}; {package} {version} is installed")


# --- bind address ----------------------------------------------------------------------


def check_bind_address(settings: Settings, facts: Facts) -> Finding:
    host, port = settings.host, settings.port
    if is_loopback(host):
        for v in violations(settings):
            if v.check == "address":  # a loopback HOST in a Replit deployment
                return Finding(PROBLEM, "address", v.summary, v.fix)
        if container_evidence(facts):
            return Finding(
                WARNING,
                "address",
                f"HOST={host} inside a container: a published port (docker run -p) arrives on "
                "the container's own interface and cannot reach a loopback listener",
                "HOST=0.0.0.0 in the container; publish it on the host's 127.0.0.1 if only "
                "this machine should reach it (-p 127.0.0.1:80:5000)",
            )
        return Finding(
            WARNING,
            "address",
            f"HOST={host}: only this machine can connect (right behind a reverse proxy on "
            "this machine); other machines get 'connection refused'",
            "HOST=0.0.0.0 to be reached from other machines (Replit, containers, a LAN)",
        )
    if _is_every_interface(host):
        if settings.proxy_hops:
            return Finding(
                WARNING,
                "address",
                f"HOST={host} (every interface) with TRUSTED_PROXY_HOPS={settings.proxy_hops}: "
                f"clients can bypass the proxy by connecting to port {port} directly, and set "
                "X-Forwarded-For themselves",
                "HOST=127.0.0.1 when the proxy runs on this machine, or a firewall that lets "
                f"only the proxy reach port {port}",
            )
        return Finding(
            OK,
            "address",
            f"HOST={host}: every interface, so other machines can connect where the network "
            "allows (needed on Replit and in containers)",
        )
    return Finding(OK, "address", f"HOST={host}: only that interface listens")


# --- port: rights and holder -----------------------------------------------------------


def _rights(settings: Settings, facts: Facts) -> ports.PortRights:
    start = 0 if ports.is_windows(facts.platform) else facts.unprivileged_start
    return ports.port_rights(
        settings.port, start=start, uid=facts.uid, capability=facts.net_bind_capability
    )


def _numbered(lines: list[str]) -> str:
    return "\n".join(f"{n}. {line}" for n, line in enumerate(lines, 1))


def check_port_rights(settings: Settings, facts: Facts) -> list[Finding]:
    found = [Finding(OK, "port", notice) for notice in settings.notices]
    rights = _rights(settings, facts)
    if not rights.privileged or (rights.allowed and facts.uid != 0):
        found.append(Finding(OK, "port", rights.reason))
    elif rights.allowed:
        found.append(
            Finding(
                WARNING,
                "port",
                f"{rights.reason}: the whole app, and any bug in it, has root's power",
                "run as an ordinary user and use one of: a reverse proxy, "
                "AmbientCapabilities=CAP_NET_BIND_SERVICE, or setcap on the interpreter",
            )
        )
    else:
        found.append(
            Finding(
                PROBLEM,
                "port",
                f"{rights.reason}: the server would stop with 'Permission denied'",
                _numbered(ports.privileged_port_fixes(settings.port)),
            )
        )
    return found


def check_port_free(
    settings: Settings,
    facts: Facts,
    *,
    try_bind: Callable[[str, int], OSError | None] = ports.try_bind,
    find_holder: Callable[[int], ports.Holder | None] = ports.find_holder,
) -> Finding:
    host, port = settings.host, settings.port
    if not _rights(settings, facts).allowed:
        # No right to bind it, so no test bind: /proc can still show a listener.
        holder = find_holder(port)
        if holder:
            return Finding(
                PROBLEM,
                "port",
                f"port {port} is also already in use by {holder}",
                f"stop it (kill {holder.pid}) or choose another port",
            )
        return Finding(OK, "port", f"port {port}: no listener on it that this user can see")
    error = try_bind(host, port)
    if error is None:
        return Finding(OK, "port", f"{host}:{port} is free (a test bind succeeded)")
    if error.errno == errno.EADDRINUSE:
        holder = find_holder(port)
        suggestion = ports.next_free_port(host, port)
        other = f"PORT={suggestion}" if suggestion else "another PORT"
        if holder:
            return Finding(
                PROBLEM,
                "port",
                f"{host}:{port} is already in use by {holder}: the server would stop with "
                "'Address already in use'",
                f"stop it (kill {holder.pid}; often an earlier run of this app), or start on "
                f"{other}",
            )
        return Finding(
            PROBLEM,
            "port",
            f"{host}:{port} is already in use by a process this user cannot see",
            f"find it with: sudo ss -ltnp 'sport = :{port}'; or start on {other}",
        )
    return Finding(PROBLEM, "port", ports.explain_bind_error(host, port, error))


# --- .replit ---------------------------------------------------------------------------


def check_replit_file(settings: Settings, facts: Facts) -> list[Finding]:
    """The .replit a Replit deployment runs: one port, mapped to 80, the one we bind."""
    path = facts.replit_file
    if not path.is_file():
        return [Finding(OK, ".replit", "no .replit file (only Replit reads it)")]
    # The file only matters on Replit: elsewhere a flaw is a warning for the day it deploys.
    bad: Level = PROBLEM if facts.on_replit else WARNING
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [Finding(bad, ".replit", f".replit cannot be read: {exc}", "fix its TOML syntax")]

    found: list[Finding] = []
    entries = [e for e in data.get("ports", []) if isinstance(e, dict)]
    mapped = [e for e in entries if e.get("externalPort") == 80]
    if len(entries) != 1:
        found.append(
            Finding(
                bad,
                ".replit",
                f".replit has {len(entries)} [[ports]] entries: an Autoscale deployment exposes "
                "exactly one, and fails promotion with more",
                "keep one [[ports]] entry: localPort = the app's port, externalPort = 80",
            )
        )
    local = mapped[0].get("localPort") if mapped else None
    if not isinstance(local, int):
        found.append(
            Finding(
                bad,
                ".replit",
                ".replit maps no localPort to externalPort = 80: the deployment has no "
                "address without a port number",
                "[[ports]] localPort = 5000, externalPort = 80",
            )
        )
    else:
        found.extend(_check_local_port(settings, facts, local, bad))
    found.extend(_check_deployment_run(data, path.parent, bad))
    if not found:
        found.append(
            Finding(
                OK,
                ".replit",
                f".replit: one port, localPort {local} -> 80, the port the server binds "
                f"({settings.port}); the deployment runs {DEPLOY_SCRIPT}",
            )
        )
    return found


def _check_local_port(settings: Settings, facts: Facts, local: int, bad: Level) -> list[Finding]:
    found: list[Finding] = []
    if local < 1024:
        found.append(
            Finding(
                bad,
                ".replit",
                f".replit localPort {local} is privileged: the deployment does not run as "
                "root and cannot bind it",
                "localPort = 5000 (Replit still serves it on external port 80)",
            )
        )
    if local == settings.port:
        return found
    mismatch = (
        f".replit routes external port 80 to localPort {local}, but the server binds "
        f"{settings.port} (PORT from {settings.source('PORT')}): the deployment would fail with "
        "'this port was never opened'"
    )
    fix = f"PORT={local} (or unset it), or change localPort in .replit to {settings.port}"
    if facts.on_replit:
        found.append(Finding(PROBLEM, ".replit", mismatch, fix))
    elif settings.source("PORT").startswith("default"):
        found.append(Finding(WARNING, ".replit", mismatch, fix))
    else:
        # PORT is set for this machine; Replit sets its own. Nothing to compare here.
        found.append(
            Finding(
                OK,
                ".replit",
                f".replit maps localPort {local} to 80 (PORT={settings.port} is this "
                "machine's; checked against .replit only on Replit)",
            )
        )
    return found


def _check_deployment_run(data: Mapping[str, Any], project: Path, bad: Level) -> list[Finding]:
    run = (
        data.get("deployment", {}).get("run") if isinstance(data.get("deployment"), dict) else None
    )
    words = run if isinstance(run, list) else str(run or "").split()
    if not any(Path(str(w)).name == DEPLOY_SCRIPT for w in words):
        return [
            Finding(
                bad,
                ".replit",
                f"the deployment run is {run!r}, not {DEPLOY_SCRIPT}: a deployment would not "
                "start gunicorn with gunicorn_config.py",
                f'[deployment] run = ["bash", "{DEPLOY_SCRIPT}"]',
            )
        ]
    if not (project / DEPLOY_SCRIPT).is_file():
        return [
            Finding(
                bad,
                ".replit",
                f"the deployment runs {DEPLOY_SCRIPT}, which does not exist next to .replit",
                f"restore {DEPLOY_SCRIPT} (it ends in exec gunicorn -c gunicorn_config.py wsgi:app)",
            )
        ]
    return []


# --- production rules ------------------------------------------------------------------


def check_production(settings: Settings) -> list[Finding]:
    """SECRET_KEY, debug and the dev server: the rules ``launchers.settings.violations`` lists, one finding each."""
    found: list[Finding] = []
    if not settings.production:
        debug = "on" if settings.debug else "off"
        found.append(
            Finding(
                OK,
                "secrets",
                f"APP_ENV={settings.env}: a fixed development SECRET_KEY is used unless one is "
                f"set; the debugger is {debug}",
            )
        )
        if settings.debug and settings.launcher == "dev" and not is_loopback(settings.host):
            found.append(
                Finding(
                    WARNING,
                    "debug",
                    f"the Werkzeug debugger is on and HOST={settings.host} lets other machines "
                    "reach it: it runs any Python code typed into an error page (behind a PIN)",
                    "HOST=127.0.0.1 for work on this machine, or FLASK_DEBUG=0",
                )
            )
        return found
    broken = {v.check: v for v in violations(settings)}
    healthy = {
        "secrets": "APP_ENV=production: SECRET_KEY is set",
        "debug": "the debugger is off",
    }
    for check in ("secrets", "debug", "launcher"):
        if check in broken:
            v = broken[check]
            found.append(Finding(PROBLEM, check, v.summary, v.fix))
        elif check in healthy:
            found.append(Finding(OK, check, healthy[check]))
    if settings.launcher == "dev" and settings.allow_dev_server:
        found.append(
            Finding(
                WARNING,
                "launcher",
                "the development server in production (ALLOW_DEV_SERVER=1): one process, "
                "no protection from slow or malformed requests",
                "APP_LAUNCHER=auto (gunicorn; waitress on Windows)",
            )
        )
    return found


# --- versions --------------------------------------------------------------------------


def _numbers(version: str) -> tuple[int, ...]:
    """The leading release numbers: 3.1.6rc1 -> (3, 1, 6)."""
    match = re.match(r"\d+(\.\d+)*", version.strip())
    return tuple(int(n) for n in match.group().split(".")) if match else (0,)


def is_older(installed: str, minimum: str) -> bool:
    """packaging's comparison where it is installed (pre-releases sort first), else numbers."""
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return _numbers(installed) < _numbers(minimum)
    try:
        return Version(installed) < Version(minimum)
    except InvalidVersion:
        return _numbers(installed) < _numbers(minimum)


def check_versions(facts: Facts, launcher: str | None) -> list[Finding]:
    needed = {"flask", "werkzeug"}
    spec = registry.LAUNCHERS.get(launcher or "")
    if spec:
        needed.add(spec.package.split("[")[0])
    found: list[Finding] = []
    fine: list[str] = []
    for package, minimum in MINIMUM_VERSIONS.items():
        name = DISPLAY_NAMES.get(package, package)
        installed = facts.versions.get(package)
        if installed is None:
            if package in needed:
                found.append(
                    Finding(
                        PROBLEM,
                        "versions",
                        f"{name} is not installed, and the app needs it",
                        "python -m pip install -r requirements.txt",
                    )
                )
            else:
                fine.append(f"{name} not installed (not needed here)")
        elif is_older(installed, minimum):
            found.append(
                Finding(
                    WARNING,
                    "versions",
                    f"{name} {installed} is older than {minimum}, the oldest release without a "
                    "known security advisory",
                    f"python -m pip install '{package}>={minimum}' (requirements.txt pins a "
                    "safe version)",
                )
            )
        else:
            fine.append(f"{name} {installed}")
    if fine:
        found.insert(
            0,
            Finding(OK, "versions", ", ".join(fine) + " (at or above the advisory-free minimums)"),
        )
    return found


# --- running every check ---------------------------------------------------------------


def diagnose(
    flags: Mapping[str, Any] | None = None,
    facts: Facts | None = None,
    *,
    dotenv_path: Path | None = None,
) -> list[Finding]:
    """Every finding, in the order printed."""
    facts = facts or gather()
    kwargs: dict[str, Any] = {} if dotenv_path is None else {"dotenv_path": dotenv_path}
    try:
        settings = load_settings(facts.environ, flags, check=False, **kwargs)
    except ConfigError as error:
        return [
            *check_platform(facts),
            Finding(PROBLEM, "settings", str(error)),
            Finding(WARNING, "settings", "the other checks need the settings: fix the one above"),
            *check_versions(facts, None),
        ]
    findings = [
        *check_platform(facts, settings),
        check_launcher(settings, facts),
        check_bind_address(settings, facts),
        *check_port_rights(settings, facts),
        check_port_free(settings, facts),
        *check_replit_file(settings, facts),
        *check_production(settings),
        *check_versions(facts, settings.launcher),
    ]
    # The launchers refuse whatever violations() lists: doctor must never say less.
    reported = {f.check for f in findings if f.level == PROBLEM}
    findings += [
        Finding(PROBLEM, v.check, v.summary, v.fix)
        for v in violations(settings)
        if v.check not in reported
    ]
    return findings


def render(findings: list[Finding]) -> str:
    width = max((len(f.check) for f in findings), default=0)
    lines = []
    for f in findings:
        lines.append(f"{f.level:<8} {f.check:<{width}}  {f.text}")
        if f.fix and f.level != OK:
            pad = " " * (8 + 1 + width + 2)
            first, *rest = f.fix.splitlines()
            lines.append(f"{pad}fix: {first}")
            lines.extend(f"{pad}     {line}" for line in rest)
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARNING for f in findings)
    if problems:
        verdict = f"{problems} problem{'s' * (problems != 1)}: the server would not start or not be reached"
    else:
        verdict = "nothing here would stop the server"
    lines.append("")
    lines.append(f"{verdict} ({warnings} warning{'s' * (warnings != 1)}).")
    return "\n".join(lines)


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.level == PROBLEM for f in findings) else 0


def main(flags: Mapping[str, Any] | None = None) -> int:
    findings = diagnose(flags)
    print(render(findings), flush=True)
    return exit_code(findings)
