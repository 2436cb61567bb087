"""The command line: ``python main.py [serve|config|doctor] [--launcher NAME] [--host H] [--port P]``.

This is the only place (with gunicorn_config.py and wsgi.py) that prints and
exits; everything it calls raises ``launchers.errors.StartupError``.

``main:app`` works too, for the many guides that say ``gunicorn main:app``:
the app is built on first access, not on import, so ``python main.py`` does
not build it twice.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from launchers.cli import exit_on_startup_error
from launchers.errors import BindError, ConfigError, LauncherUnavailable
from launchers.registry import names
from launchers.settings import SETTINGS


def __getattr__(name: str):
    if name == "app":
        from wsgi import app

        return app
    raise AttributeError(name)


def build_parser() -> argparse.ArgumentParser:
    variables = "\n".join(f"  {s.env:<20} {s.accepted}" for s in SETTINGS)
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Serve the Flask app with the launcher the environment chooses.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "commands:\n"
            "  serve    start the server (the default)\n"
            "  config   print every resolved setting and where it came from, then exit\n"
            "  doctor   check this machine for what would stop the app being reached\n\n"
            f"launchers: auto, {', '.join(names())}\n"
            "  auto = dev in development; gunicorn in production (waitress on Windows)\n\n"
            "environment variables (flag > environment > .env > default; see .env.example):\n"
            f"{variables}\n\n"
            "exit codes:\n"
            f"  0  stopped cleanly (SIGTERM drains requests in flight; Ctrl-C stops at once)\n"
            f"  {ConfigError.exit_code}  a setting is malformed or not allowed (the message names it)\n"
            f"  {BindError.exit_code}  the port is privileged for this user or already in use\n"
            f"  {LauncherUnavailable.exit_code}  the launcher cannot run here (not installed, "
            "gunicorn on Windows)\n"
            "  1  doctor found a problem that would stop the server"
        ),
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "config", "doctor"),
        default="serve",
        help="what to do (default: serve)",
    )
    parser.add_argument("--launcher", metavar="NAME", help="overrides APP_LAUNCHER")
    parser.add_argument("--host", metavar="ADDRESS", help="overrides HOST")
    parser.add_argument("--port", metavar="PORT", help="overrides PORT")
    return parser


def print_config(settings) -> None:
    rows = settings.describe()
    width = max(len(r[0]) for r in rows)
    value_width = min(40, max(len(r[1]) for r in rows))
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {source}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {"launcher": args.launcher, "host": args.host, "port": args.port}

    if args.command == "doctor":
        from launchers.doctor import main as doctor

        return doctor(flags)

    # Ctrl-C stops at once, without a traceback (a shell's `&` may have set SIGINT to ignore).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from launchers.settings import load_settings

    with exit_on_startup_error():
        settings = load_settings(flags=flags)

    if args.command == "config":
        print_config(settings)
        return 0

    from app.logs import configure_logging
    from launchers import run

    configure_logging(settings.log_level, settings.log_format)
    with exit_on_startup_error():
        try:
            run(settings)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
