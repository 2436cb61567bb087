"""Every shell command the docs give: README.md, docs/, deploy/, and the commands in the
comments of the files people copy (the unit, the nginx site, the scripts, the Dockerfile,
compose.yaml, gunicorn_config.py and wsgi.py). Read by tests/test_docs_commands.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

GUIDES = (
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(ROOT.glob("deploy/**/*.md")),
)
COMMENTED = (
    ROOT / "Dockerfile",
    ROOT / "compose.yaml",
    ROOT / "deploy" / "nginx" / "flask-app.conf",
    ROOT / "deploy" / "systemd" / "flask-app.service",
    *sorted(ROOT.glob("deploy/**/*.sh")),
)
DOCSTRINGS = (ROOT / "wsgi.py", ROOT / "gunicorn_config.py")
SHELLS = {"sh", "bash", "shell", "console", "powershell"}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
COMMENTED_COMMAND = re.compile(r"^#   (\S.*)$")  # "#", three spaces, the command
CONTINUED = re.compile(r"^#\s+(\S.*)$")  # its next line, when it ends with a backslash
# Commented settings (a unit's Key=value, a Dockerfile's RUN ...) are examples, not commands.
NOT_A_COMMAND = re.compile(r"^[A-Z][A-Za-z]*(=| )")
DOCSTRING_COMMAND = re.compile(r"^    ((?:gunicorn|python|\.venv)\b.*)$")


def without_comment(line: str) -> str:
    """The line without a trailing ``# ...`` comment (a # outside quotes, after a blank)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def logical_lines(lines: list[str]) -> Iterator[str]:
    """Lines joined where one ends with a backslash, blank lines and comments left out."""
    pending = ""
    for raw in lines:
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        command = without_comment(pending + line)
        pending = ""
        if command:
            yield command


def commented_lines(lines: list[str]) -> list[str]:
    """The commands in a file's comments, with the lines that continue them."""
    found: list[str] = []
    for line in lines:
        continued = CONTINUED.match(line) if found and found[-1].endswith("\\") else None
        match = continued or COMMENTED_COMMAND.match(line)
        if match:
            found.append(match[1])
    return found


def commands() -> dict[str, list[str]]:
    """Each command, as written, with the files it appears in."""
    found: dict[str, list[str]] = {}

    def add(command: str, path: Path) -> None:
        where = found.setdefault(command, [])
        name = path.relative_to(ROOT).as_posix()
        if name not in where:
            where.append(name)

    for path in GUIDES:
        for language, body in FENCE.findall(path.read_text()):
            if language in SHELLS:
                for command in logical_lines(body.splitlines()):
                    add(command, path)
    for path in COMMENTED:
        for command in logical_lines(commented_lines(path.read_text().splitlines())):
            if not NOT_A_COMMAND.match(command):
                add(command, path)
    for path in DOCSTRINGS:
        lines = [m[1] for m in map(DOCSTRING_COMMAND.match, path.read_text().splitlines()) if m]
        for command in logical_lines(lines):
            add(command, path)
    return found
