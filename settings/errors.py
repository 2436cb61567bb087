"""Typed start-up errors, and the problems that raise them.

Library code raises these; only the command-line boundary (``main.py``,
``gunicorn_config.py``, ``wsgi.py``, through ``launchers.cli``) prints them and
exits. Each class has its own exit code, so that scripts and supervisors can
tell a bad setting from a port that could not be bound:

====  =====================================================================
code  meaning
====  =====================================================================
2     configuration error: a malformed or forbidden setting
3     bind error: the port is privileged for this user, already in use, or
      not an address of this machine
4     environment error: a launcher that cannot run here (not installed,
      gunicorn on Windows)
====  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass


class StartupError(Exception):
    """A start that cannot succeed; ``str(error)`` is the whole explanation."""

    exit_code = 1
    meaning = "doctor found a problem that would stop the server"


class ConfigError(StartupError):
    exit_code = 2
    meaning = "a setting is malformed or not allowed (the message names it)"


class BindError(StartupError):
    exit_code = 3
    meaning = (
        "the port cannot be bound: privileged for this user, already in use, "
        "or not an address of this machine"
    )


class LauncherUnavailable(StartupError):
    exit_code = 4
    meaning = "the launcher cannot run here (not installed, gunicorn on Windows)"


EXIT_CODES = (ConfigError, BindError, LauncherUnavailable, StartupError)


@dataclass(frozen=True)
class Problem:
    """One reason a start cannot succeed, in the one wording both a refused start
    and ``python main.py doctor`` use: what is wrong and why, then the fix.

    A fix that starts on a new line (commands, numbered options) stays on its own lines.
    """

    check: str  # the column doctor prints it under: "secrets", "port", ...
    error: type[StartupError]
    text: str
    fix: str

    @property
    def message(self) -> str:
        sep = "" if self.fix.startswith("\n") else " "
        return f"{self.text}{sep}{self.fix}"

    def exception(self) -> StartupError:
        return self.error(self.message)


def raise_first(problems: list[Problem]) -> None:
    if problems:
        raise problems[0].exception()
