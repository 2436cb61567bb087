"""The reference docs, made from the declarations: ``.env.example`` and the README's tables.

    python -m settings.reference          # check .env.example and README.md are current
    python -m settings.reference --write  # rewrite them

A test fails when either file is out of date, so the docs cannot drift from the code.
"""

from __future__ import annotations

import sys
import textwrap

from settings import PROJECT_ROOT, SETTINGS, registry

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
README = PROJECT_ROOT / "README.md"
COMMAND = "python -m settings.reference --write"


def env_example() -> str:
    lines = [
        "# Every setting, with its default. Copy to .env (never committed) and uncomment what",
        "# you change. Precedence: command-line flag > environment > .env > default. A .env",
        f"# never overrides a variable that is already set. Made by: {COMMAND}",
        "",
    ]
    for s in SETTINGS:
        lines += [f"# {line}" for line in textwrap.wrap(s.help, 96)]
        lines.append(f"# Accepted: {s.convert.accepted}.")
        lines.append(f"# {s.env}={'' if s.secret else s.shown_default}")
        lines.append("")
    return "\n".join(lines)


def settings_table() -> str:
    rows = ["| variable | accepted | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = "(none)" if s.secret else s.shown_default
        rows.append(f"| `{s.env}` | {s.convert.accepted} | {default} | {s.help} |")
    return "\n".join(rows)


def launchers_table() -> str:
    rows = [
        "| `APP_LAUNCHER` | server | when `auto` picks it | graceful stop on SIGTERM |",
        "|---|---|---|---|",
    ]
    for name, spec in registry.LAUNCHERS.items():
        when = registry.AUTO_WHEN[spec.auto] if spec.auto else f"never: `APP_LAUNCHER={name}`"
        server = spec.server
        if spec.requirements != "requirements.txt":
            server += f"; optional: `pip install -r {spec.requirements}`"
        rows.append(f"| `{name}` | {server} | {when} | {spec.stop} |")
    return "\n".join(rows)


TABLES = {"settings-table": settings_table, "launchers-table": launchers_table}


def with_tables(readme: str) -> str:
    for name, make in TABLES.items():
        begin = f"<!-- {name}:begin (made by {COMMAND}) -->"
        end = f"<!-- {name}:end -->"
        head, found, rest = readme.partition(begin)
        _, found_end, tail = rest.partition(end)
        if not found or not found_end:
            raise ValueError(f"README.md lacks the markers {begin!r} ... {end!r}")
        readme = f"{head}{begin}\n{make()}\n{end}{tail}"
    return readme


def main(argv: list[str]) -> int:
    wanted = {ENV_EXAMPLE: env_example(), README: with_tables(README.read_text())}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    for path in stale:
        if "--write" in argv:
            path.write_text(wanted[path])
            print(f"wrote {path.name}")
        else:
            print(f"{path.name} is out of date: {COMMAND}", file=sys.stderr)
    return 1 if stale and "--write" not in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
