"""What the bench starts, how, and under which loads.

Groups:
  ours       ``python main.py`` in production as shipped, one per launcher
  baseline   the seeds' ``gunicorn -w 3 wsgi:app``, serving the starter's app
  bare       the same launchers and settings serving a bare Flask hello (bench/apps.py):
             the starter against these is what its own code costs
  ceiling    a raw WSGI hello, no Flask, under granian
  reference  plain ``gunicorn -w 1 wsgi:app``, no config: the cold-start yardstick (no load)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field

from bench import project
from bench.wrk import Load

HEADLINE = Load(64, True)  # the goals' load: 64 connections kept alive
ALL_LOADS = (Load(16, True), HEADLINE, Load(16, False), Load(64, False))

# Every server starts in production, on loopback, with no .env: the shipped defaults.
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdef",  # a throwaway for local servers
    "HOST": "127.0.0.1",
    "ENV_FILE": "none",
}


GUNICORN_VARIABLES = {"GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS"}  # read by gunicorn itself


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """This shell's environment without the project's variables, then production, then extra."""
    ignored = project.variables() | GUNICORN_VARIABLES
    inherited = {k: v for k, v in os.environ.items() if k not in ignored}
    return inherited | PRODUCTION | extra


@dataclass(frozen=True)
class Config:
    name: str
    group: str
    label: str
    argv: tuple[str, ...]  # as shown to people: "python" is this interpreter, {port} the port
    env: dict[str, str] = field(default_factory=dict)
    loaded: bool = True  # False: started for its cold start and memory only
    needs: str = ""  # an optional package it needs, e.g. granian

    def available(self) -> bool:
        return not self.needs or importlib.util.find_spec(self.needs) is not None

    def command(self, port: int) -> list[str]:
        return [sys.executable if a == "python" else a.format(port=port) for a in self.argv]

    def shown(self) -> str:
        words = [*(f"{k}={v}" for k, v in self.env.items()), *self.argv]
        return " ".join(words).replace("{port}", "PORT")


MAIN = ("python", "main.py")
GUNICORN = ("python", "-m", "gunicorn", "-b", "127.0.0.1:{port}")  # never beyond loopback


def bare(launcher: str, app: str = "flask") -> tuple[str, ...]:
    return ("python", "-m", "bench.serve", launcher, app)


CONFIGS = (
    Config("ours-gunicorn", "ours", "gunicorn (ours, default)", MAIN),
    Config(
        "ours-granian", "ours", "granian (ours)", MAIN, {"APP_LAUNCHER": "granian"}, needs="granian"
    ),
    Config("ours-waitress", "ours", "waitress (ours)", MAIN, {"APP_LAUNCHER": "waitress"}),
    Config("seeds", "baseline", "gunicorn -w 3 (seeds)", (*GUNICORN, "-w", "3", "wsgi:app")),
    Config("bare-gunicorn", "bare", "gunicorn, bare Flask", bare("gunicorn")),
    Config("bare-granian", "bare", "granian, bare Flask", bare("granian"), needs="granian"),
    Config("bare-waitress", "bare", "waitress, bare Flask", bare("waitress")),
    Config(
        "ceiling-granian",
        "ceiling",
        "granian, raw WSGI (no Flask)",
        bare("granian", "wsgi"),
        needs="granian",
    ),
    Config(
        "ref-gunicorn-w1",
        "reference",
        "gunicorn -w 1, no config",
        (*GUNICORN, "-w", "1", "wsgi:app"),
        loaded=False,
    ),
)
