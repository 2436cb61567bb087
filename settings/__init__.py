"""The one settings object that the app, every launcher and ``gunicorn_config.py`` read.

Each setting is one declaration in ``settings/declared.py``, a field of ``Settings``: its variable,
default and help, the converter coming from its type or given beside it.
``SETTINGS`` is read back from those fields, and ``.env.example``, the README
table, ``--help``, ``python main.py config`` and the tests' list of variables
are all made from it (``python -m settings.reference``).

Precedence, highest first: command-line flag, environment, ``.env`` file,
default. A ``.env`` file is read with python-dotenv and never overrides a
variable that is already set. An empty value counts as unset.

This package imports neither ``app`` nor ``launchers``: both import it.
"""

from settings.declared import (
    BY_ENV,
    DOTENV_PATH,
    PROJECT_ROOT,
    SETTINGS,
    VARIABLES,
    Context,
    Settings,
)
from settings.loader import load_settings
from settings.rules import DEV_SECRET_KEY

__all__ = [
    "BY_ENV",
    "DEV_SECRET_KEY",
    "DOTENV_PATH",
    "PROJECT_ROOT",
    "SETTINGS",
    "VARIABLES",
    "Context",
    "Settings",
    "load_settings",
]
