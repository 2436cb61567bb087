"""Whether the app, once started, can be reached: the platform, the address, ``.replit``."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from launchers.machine import (
    OK,
    PROBLEM,
    WARNING,
    Facts,
    Finding,
    Level,
    describe_platform,
    in_container,
)
from settings import Settings
from settings.replit import read_replit
from settings.rules import is_loopback

DEPLOY_SCRIPT = "flask_deploy.sh"


def check_platform(facts: Facts, settings: Settings | None = None) -> list[Finding]:
    port = settings.port if settings else read_replit(facts.replit_file).internal_port
    notes = describe_platform(facts, read_replit(facts.replit_file).internal_port, port)
    return [Finding(OK, "platform", note) for note in notes]


def check_bind_address(settings: Settings, facts: Facts) -> list[Finding]:
    host, port = settings.host, settings.port
    if is_loopback(host) and settings.replit_deployment:
        return []  # a rule of its own (settings.rules), reported with the others
    if is_loopback(host) and in_container(facts):
        text = (
            f"HOST={host} inside a container: a published port (docker run -p) arrives on the "
            "container's own interface and cannot reach a loopback listener"
        )
        fix = "HOST=0.0.0.0 in the container; publish it on the host's 127.0.0.1 if only this machine should reach it (-p 127.0.0.1:80:5000)"
        return [Finding(WARNING, "address", text, fix)]
    if is_loopback(host):
        text = (
            f"HOST={host}: only this machine can connect (right behind a reverse proxy on this "
            "machine); other machines get 'connection refused'"
        )
        fix = "HOST=0.0.0.0 to be reached from other machines (Replit, containers, a LAN)"
        return [Finding(WARNING, "address", text, fix)]
    if _every_interface(host) and settings.proxy_hops:
        text = (
            f"HOST={host} (every interface) with TRUSTED_PROXY_HOPS={settings.proxy_hops}: clients "
            f"can bypass the proxy by connecting to port {port} directly, and set X-Forwarded-For "
            "themselves"
        )
        fix = f"HOST=127.0.0.1 when the proxy runs on this machine, or a firewall that lets only the proxy reach port {port}"
        return [Finding(WARNING, "address", text, fix)]
    if _every_interface(host):
        text = f"HOST={host}: every interface, so other machines can connect where the network allows (needed on Replit and in containers)"
        return [Finding(OK, "address", text)]
    return [Finding(OK, "address", f"HOST={host}: only that interface listens")]


def _every_interface(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def check_replit_file(settings: Settings, facts: Facts) -> list[Finding]:
    """The .replit a Replit deployment runs: one port, mapped to 80, the one we bind."""
    replit = read_replit(facts.replit_file)
    if not replit.exists:
        return [Finding(OK, ".replit", "no .replit file (only Replit reads it)")]
    # Off Replit a flaw is a warning, for the day it deploys.
    bad: Level = PROBLEM if facts.on_replit else WARNING
    if replit.error:
        return [
            Finding(
                bad, ".replit", f".replit cannot be read: {replit.error}", "fix its TOML syntax"
            )
        ]
    found = []
    if len(replit.ports) != 1:
        text = f".replit has {len(replit.ports)} [[ports]] entries: an Autoscale deployment exposes exactly one, and fails promotion with more"
        found.append(
            Finding(
                bad,
                ".replit",
                text,
                "keep one [[ports]] entry: localPort = the app's port, externalPort = 80",
            )
        )
    local = replit.local_port
    if local is None:
        text = ".replit maps no localPort to externalPort = 80: the deployment has no address without a port number"
        found.append(Finding(bad, ".replit", text, "[[ports]] localPort = 5000, externalPort = 80"))
    elif local < 1024:
        text = f".replit localPort {local} is privileged: the deployment does not run as root and cannot bind it"
        found.append(
            Finding(
                bad,
                ".replit",
                text,
                "localPort = 5000 (Replit still serves it on external port 80)",
            )
        )
    elif local != settings.port and (
        facts.on_replit or settings.source("PORT").startswith("default")
    ):
        text = (
            f".replit routes external port 80 to localPort {local}, but the server binds "
            f"{settings.port} (PORT from {settings.source('PORT')}): the deployment would fail "
            "with 'this port was never opened'"
        )
        fix = f"PORT={local} (or unset it), or change localPort in .replit to {settings.port}"
        found.append(Finding(PROBLEM if facts.on_replit else WARNING, ".replit", text, fix))
    run = replit.deployment_run
    words = run if isinstance(run, list) else str(run or "").split()
    if not any(Path(str(w)).name == DEPLOY_SCRIPT for w in words):
        text = f"the deployment run is {run!r}, not {DEPLOY_SCRIPT}: a deployment would not start gunicorn with gunicorn_config.py"
        found.append(
            Finding(bad, ".replit", text, f'[deployment] run = ["bash", "{DEPLOY_SCRIPT}"]')
        )
    elif not (facts.replit_file.parent / DEPLOY_SCRIPT).is_file():
        text = f"the deployment runs {DEPLOY_SCRIPT}, which does not exist next to .replit"
        found.append(
            Finding(
                bad,
                ".replit",
                text,
                f"restore {DEPLOY_SCRIPT} (it ends in exec gunicorn -c gunicorn_config.py wsgi:app)",
            )
        )
    return found or [
        Finding(
            OK,
            ".replit",
            f".replit: one port, localPort {local} -> 80; the deployment runs {DEPLOY_SCRIPT}",
        )
    ]
