"""The command-line boundary: where a StartupError becomes a message and an exit code.

``main.py``, ``gunicorn_config.py`` and ``wsgi.py`` are the only places that
print and exit; they all do it through ``exit_on_startup_error``.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from settings.errors import StartupError


def format_error(error: StartupError) -> str:
    lines = []
    for line in f"error: {error}".splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if not line or len(indent) >= 4:
            lines.append(line)  # a command to copy: never wrapped
            continue
        # Never split a path or a hyphenated name across lines.
        lines.append(
            textwrap.fill(
                line,
                width=100,
                subsequent_indent=indent + "   ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


@contextmanager
def exit_on_startup_error() -> Iterator[None]:
    try:
        yield
    except StartupError as error:
        print(format_error(error), file=sys.stderr, flush=True)
        raise SystemExit(error.exit_code) from None
