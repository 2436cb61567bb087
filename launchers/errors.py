"""Typed start-up errors.

Library code raises these; only the command-line boundary (``main.py``,
``gunicorn_config.py``, ``wsgi.py``) prints them and exits. Each class has its
own exit code so that scripts and supervisors can tell a bad setting from a
port that could not be bound:

====  =====================================================================
code  meaning
====  =====================================================================
2     configuration error: a malformed or forbidden setting
3     bind error: the port is privileged for this user, or already in use
4     environment error: a launcher that cannot run here (not installed,
      gunicorn on Windows)
====  =====================================================================
"""

from __future__ import annotations


class StartupError(Exception):
    """A start that cannot succeed; ``str(error)`` is the whole explanation."""

    exit_code = 1


class ConfigError(StartupError):
    """A setting is malformed or not allowed in this environment."""

    exit_code = 2


class BindError(StartupError):
    """The server cannot listen on the address and port it was given."""

    exit_code = 3


class LauncherUnavailable(StartupError):
    """The chosen launcher cannot run on this machine."""

    exit_code = 4
