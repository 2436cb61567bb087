"""``python main.py doctor``: what on this machine would stop the app starting or being reached.

One line per check, marked ``ok``, ``warning`` or ``problem``; every warning and
problem is followed by its fix. The exit code is 0 when nothing would stop the
server, 1 otherwise (a warning never fails: it is about reach or safety, not start).

Every problem that would refuse a start is the start's own ``Problem``, from
``settings.rules`` and ``launchers.checks``, in the same words: doctor lists
them all where a start stops at the first. It adds only what a start does not
check: the platform, whether the address can be reached, ``.replit``, and the
installed versions against the pins. ``Facts`` (read once by ``gather``, made
up by tests) is everything it reads from the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from launchers import checks, ports
from launchers.machine import (  # noqa: F401 - Facts, pinned_versions: doctor's API too
    OK,
    PROBLEM,
    WARNING,
    Facts,
    Finding,
    gather,
    pinned_versions,
    rights,
)
from launchers.reach import check_bind_address, check_platform, check_replit_file
from settings import Context, Settings, load_settings, registry
from settings.errors import ConfigError
from settings.rules import is_loopback, violations


def check_launcher(settings: Settings, facts: Facts) -> list[Finding]:
    name = settings.launcher
    if settings.app_launcher == "auto":
        chosen = f"auto chooses {name} ({registry.resolve_auto(settings.env, facts.platform)[1]})"
    else:
        chosen = f"APP_LAUNCHER={name} (from {settings.source('APP_LAUNCHER')})"
    package = registry.LAUNCHERS[name].package
    problems = checks.launcher_problems(settings, installed=lambda p: bool(facts.versions.get(p)))
    if problems:
        return [Finding(OK, "launcher", chosen), *map(Finding.of, problems)]
    return [Finding(OK, "launcher", f"{chosen}; {package} {facts.versions[package]} is installed")]


def check_port(
    settings: Settings,
    facts: Facts,
    *,
    try_bind: Callable[[str, int], OSError | None] = ports.try_bind,
) -> list[Finding]:
    found = [Finding(OK, "port", notice) for notice in settings.notices]
    allowed = rights(settings, facts)
    problems = checks.port_problems(settings, rights=allowed, try_bind=try_bind)
    if problems:
        return found + [Finding.of(p) for p in problems]
    if allowed.privileged and facts.uid == 0:
        fix = "run as an ordinary user and use one of: a reverse proxy, AmbientCapabilities=CAP_NET_BIND_SERVICE, or setcap on the interpreter"
        found.append(
            Finding(
                WARNING,
                "port",
                f"{allowed.reason}: the whole app, and any bug in it, has root's power",
                fix,
            )
        )
    else:
        found.append(Finding(OK, "port", allowed.reason))
    return found + [
        Finding(OK, "port", f"{settings.host}:{settings.port} is free (a test bind succeeded)")
    ]


def check_production(settings: Settings) -> list[Finding]:
    """The rules across settings (settings.rules), and what is allowed but risky."""
    found = [Finding.of(p) for p in violations(settings)]
    if not settings.production:
        debug = "on" if settings.debug else "off"
        text = f"APP_ENV={settings.env}: a fixed development SECRET_KEY is used unless one is set; the debugger is {debug}"
        found.insert(0, Finding(OK, "secrets", text))
        if settings.debug and settings.launcher == "dev" and not is_loopback(settings.host):
            text = (
                f"the Werkzeug debugger is on and HOST={settings.host} lets other machines reach "
                "it: it runs any Python code typed into an error page (behind a PIN)"
            )
            found.append(
                Finding(
                    WARNING,
                    "debug",
                    text,
                    "HOST=127.0.0.1 for work on this machine, or FLASK_DEBUG=0",
                )
            )
    elif not found:
        found.append(
            Finding(OK, "secrets", "APP_ENV=production: SECRET_KEY is set; the debugger is off")
        )
    if settings.production and settings.launcher == "dev" and settings.allow_dev_server:
        text = "the development server in production (ALLOW_DEV_SERVER=1): one process, no protection from slow or malformed requests"
        found.append(
            Finding(WARNING, "launcher", text, "APP_LAUNCHER=auto (gunicorn; waitress on Windows)")
        )
    return found


def check_versions(facts: Facts, launcher: str | None) -> list[Finding]:
    """The installed versions against requirements.txt's pins, the versions the project tested.

    ``launcher`` is None when the settings could not be read: then only Flask's are needed.
    """
    needed = {"flask", "werkzeug"} | ({registry.LAUNCHERS[launcher].package} if launcher else set())
    fix = (
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt (the README's command)"
    )
    found, fine = [], []
    for package, pinned in pinned_versions(facts.requirements).items():
        installed = facts.versions.get(package)
        if installed == pinned:
            fine.append(f"{package} {installed}")
        elif installed is None and package in needed:
            found.append(
                Finding(
                    PROBLEM, "versions", f"{package} is not installed, and the app needs it", fix
                )
            )
        elif installed is not None and package in facts.versions:
            text = f"{package} {installed} is installed, requirements.txt pins {pinned}"
            found.append(Finding(WARNING, "versions", text, fix))
    if fine:
        found.insert(0, Finding(OK, "versions", ", ".join(fine) + " (as pinned)"))
    return found


# --- running every check ---------------------------------------------------------------


def diagnose(
    flags: Mapping[str, Any] | None = None, facts: Facts | None = None, **load: Any
) -> list[Finding]:
    """Every finding, in the order printed. ``load`` goes to ``load_settings`` (tests)."""
    facts = facts or gather()
    load.setdefault("context", Context(platform=facts.platform))
    try:
        loaded = load_settings(facts.environ, flags, check=False, **load)
    except ConfigError as error:
        return [
            *check_platform(facts),
            Finding(PROBLEM, "settings", str(error)),
            Finding(WARNING, "settings", "the other checks need the settings: fix the one above"),
            *check_versions(facts, None),
        ]
    settings = checks.prepare(loaded, rights=rights(loaded, facts), replit_file=facts.replit_file)
    return [
        *check_platform(facts, settings),
        *check_launcher(settings, facts),
        *check_bind_address(settings, facts),
        *check_port(settings, facts),
        *check_replit_file(settings, facts),
        *check_production(settings),
        *check_versions(facts, settings.launcher),
    ]


def render(findings: list[Finding]) -> str:
    width = max((len(f.check) for f in findings), default=0)
    pad = " " * (8 + 1 + width + 2)
    lines = []
    for f in findings:
        lines.append(f"{f.level:<8} {f.check:<{width}}  {f.text}")
        if f.fix and f.level != OK:
            first, *rest = f.fix.splitlines()
            lines.append(f"{pad}fix: {first}")
            lines.extend(f"{pad}     {line}" for line in rest)
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARNING for f in findings)
    verdict = (
        f"{problems} problem{'s' * (problems != 1)}: the server would not start or not be reached"
        if problems
        else "nothing here would stop the server"
    )
    return "\n".join([*lines, "", f"{verdict} ({warnings} warning{'s' * (warnings != 1)})."])


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.level == PROBLEM for f in findings) else 0


def main(flags: Mapping[str, Any] | None = None) -> int:
    findings = diagnose(flags)
    print(render(findings), flush=True)
    return exit_code(findings)
