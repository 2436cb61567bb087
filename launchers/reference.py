"""The settings reference, made from the declarations in launchers/settings.py.

    python -m launchers.reference          # check .env.example and README are current
    python -m launchers.reference --write  # rewrite them

A test fails when either file is out of date, so the docs cannot drift from the code.
"""

from __future__ import annotations

import sys
import textwrap

from launchers.settings import PROJECT_ROOT, SETTINGS

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
README = PROJECT_ROOT / "README.md"
BEGIN = "<!-- settings-table:begin (made by python -m launchers.reference --write) -->"
END = "<!-- settings-table:end -->"


def env_example() -> str:
    lines = [
        "# Every setting, with its default. Copy to .env (never committed) and uncomment what",
        "# you change. Precedence: command-line flag > environment > .env > default. A .env",
        "# never overrides a variable that is already set. Made by: python -m launchers.reference",
        "",
    ]
    for s in SETTINGS:
        for line in textwrap.wrap(s.help, 96):
            lines.append(f"# {line}")
        lines.append(f"# Accepted: {s.accepted}.")
        lines.append(f"# {s.env}={s.example}")
        lines.append("")
    return "\n".join(lines)


def markdown_table() -> str:
    rows = ["| variable | accepted | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = s.example or ("(none)" if s.secret else "")
        rows.append(f"| `{s.env}` | {s.accepted} | {default} | {s.help} |")
    return "\n".join(rows)


def readme_with_table(readme: str) -> str:
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the markers {BEGIN!r} ... {END!r}")
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    wanted = {ENV_EXAMPLE: env_example(), README: readme_with_table(README.read_text())}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if "--write" in argv:
        for path in stale:
            path.write_text(wanted[path])
            print(f"wrote {path.name}")
        return 0
    for path in stale:
        print(f"{path.name} is out of date: python -m launchers.reference --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
