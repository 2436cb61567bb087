"""The command line: ``python main.py [serve|config|doctor] [--launcher NAME] [--host H] [--port P]``.

This is the only place (with gunicorn_config.py and wsgi.py) that prints and
exits; everything it calls raises ``settings.errors.StartupError``.

``main:app`` works too, for the many guides that say ``gunicorn main:app``:
the app is built on first access, not on import, so ``python main.py`` does
not build it twice.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from collections.abc import Sequence

from settings.errors import EXIT_CODES, LauncherUnavailable


def _stop_without_dependencies(module: str) -> None:
    print(
        f"error: the app's dependencies are not installed in this Python ({sys.executable}: "
        f"no module named {module!r}). Install them in a virtual environment and run the "
        "app with its Python:\n"
        "    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n"
        "    .venv/bin/python main.py",
        file=sys.stderr,
    )
    sys.exit(LauncherUnavailable.exit_code)


# Looked up, not imported: this process may become gunicorn's master, whose imports every
# worker inherits, and a reload (SIGHUP) gives the workers only what it has not imported.
if importlib.util.find_spec("flask") is None:  # a fresh clone, or the system Python
    _stop_without_dependencies("flask")
try:
    from launchers import checks, run
    from launchers.cli import exit_on_startup_error
    from settings import SETTINGS, Settings, load_settings, registry
    from settings.rules import violations
except ModuleNotFoundError as missing:
    if missing.name and missing.name.split(".")[0] in ("app", "launchers", "settings"):
        raise
    _stop_without_dependencies(str(missing.name))


def __getattr__(name: str):
    if name == "app":
        from wsgi import app

        return app
    raise AttributeError(name)


def build_parser() -> argparse.ArgumentParser:
    variables = "\n".join(f"  {s.env:<20} {s.convert.accepted}" for s in SETTINGS)
    auto = "; ".join(
        f"{name} for {registry.AUTO_WHEN[spec.auto]}"
        for name, spec in registry.LAUNCHERS.items()
        if spec.auto
    )
    codes = "\n".join(f"  {error.exit_code}  {error.meaning}" for error in EXIT_CODES)
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Serve the Flask app with the launcher the environment chooses.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "commands:\n"
            "  serve    start the server (the default)\n"
            "  config   print every resolved setting and where it came from, then exit\n"
            "  doctor   check this machine for what would stop the app being reached\n\n"
            f"launchers: auto, {', '.join(registry.LAUNCHERS)}\n  auto = {auto}\n\n"
            "environment variables (flag > environment > .env > default; see .env.example):\n"
            f"{variables}\n\n"
            "exit codes:\n"
            "  0  stopped cleanly (SIGTERM drains requests in flight; Ctrl-C stops at once)\n"
            f"{codes}"
        ),
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "config", "doctor"),
        default="serve",
        help="what to do (default: serve)",
    )
    for s in SETTINGS:
        if s.flag:
            parser.add_argument(s.flag, metavar=s.flag[2:].upper(), help=f"overrides {s.env}")
    return parser


def print_config(settings: Settings) -> None:
    rows = settings.describe()
    width = max(len(r[0]) for r in rows)
    value_width = min(40, max(len(r[1]) for r in rows))
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {source}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {s.flag[2:]: getattr(args, s.flag[2:]) for s in SETTINGS if s.flag}

    if args.command == "doctor":
        from launchers.doctor import main as doctor

        return doctor(flags)

    # Ctrl-C stops at once, without a traceback (a shell's `&` may have set SIGINT to ignore).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.command == "config":
        with exit_on_startup_error():
            settings = checks.prepare(load_settings(flags=flags, check=False))
        print_config(settings)
        for problem in violations(settings):
            print(f"\nA start would be refused: {problem.message}", file=sys.stderr)
        return 0
    with exit_on_startup_error():
        settings = checks.prepare(load_settings(flags=flags))
    with exit_on_startup_error():
        try:
            run(settings)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
