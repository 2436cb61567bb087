"""What the bench measures: each configuration, how to start it, which loads it gets.

Groups:
  ours      ``python main.py`` in production with the shipped defaults, one per launcher
  baseline  what the seeds and the usual advice run: ``gunicorn -w 3 wsgi:app``, sync 2*CPU+1
  bare      our launchers and settings serving a bare Flask hello (bench.apps.flask_app):
            ours against these is the cost of our middleware
  ceiling   a raw WSGI hello, no Flask, under the fastest server
  reference bare ``gunicorn`` on the minimal Flask app: the cold-start yardstick (no load)
  tuning    the alternatives the shipped defaults were chosen against
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.wrk import Load

PY = sys.executable
C16_KA, C64_KA = Load(16, True), Load(64, True)
C16_CLOSE, C64_CLOSE = Load(16, False), Load(64, False)
ALL_LOADS = (C16_KA, C64_KA, C16_CLOSE, C64_CLOSE)
HEADLINE = C64_KA  # the goals' load: 64 connections with keep-alive


@dataclass(frozen=True)
class Config:
    name: str
    group: str
    label: str
    command: Callable[[int], list[str]]  # port -> argv
    env: dict[str, str] = field(default_factory=dict)
    loads: Sequence[Load] = ALL_LOADS
    needs: str = ""  # a module that must be importable (an optional dependency)
    launcher: str = ""  # the server, for "same server" comparisons

    def available(self) -> bool:
        return not self.needs or importlib.util.find_spec(self.needs) is not None

    def describe_command(self) -> str:
        argv = ["python" if a == PY else a for a in self.command(0)]
        shown = " ".join(argv).replace(":0", ":PORT").replace("PORT=0", "PORT")
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{env} {shown}".strip()


def main_py(port: int) -> list[str]:
    return [PY, "main.py"]


def bench_serve(launcher: str, app: str) -> Callable[[int], list[str]]:
    return lambda port: [PY, "-m", "bench.serve", launcher, app]


def gunicorn_cli(*args: str, target: str = "wsgi:app") -> Callable[[int], list[str]]:
    return lambda port: [PY, "-m", "gunicorn", *args, "-b", f"127.0.0.1:{port}", target]


def configurations(cpus: int) -> list[Config]:
    sync_workers = 2 * cpus + 1
    dev_ok = {"ALLOW_DEV_SERVER": "1"}  # the dev server in production: a demo, measured
    out = [
        # ours: python main.py in production, nothing but the launcher chosen
        Config("ours-gunicorn", "ours", "gunicorn (ours, default)", main_py, launcher="gunicorn"),
        Config(
            "ours-granian",
            "ours",
            "granian (ours)",
            main_py,
            {"APP_LAUNCHER": "granian"},
            needs="granian",
            launcher="granian",
        ),
        Config(
            "ours-waitress",
            "ours",
            "waitress (ours)",
            main_py,
            {"APP_LAUNCHER": "waitress"},
            launcher="waitress",
        ),
        Config(
            "ours-dev",
            "ours",
            "dev server (ours)",
            main_py,
            {"APP_LAUNCHER": "dev", **dev_ok},
            launcher="dev",
        ),
        # baselines: the seeds' command and the classic sync advice, serving our app
        Config(
            "ours-gunicorn-cli",
            "ours",
            "gunicorn -c gunicorn_config.py (ours)",
            gunicorn_cli("-c", "gunicorn_config.py"),
            loads=(),  # the platforms' entry (Procfile, Docker): same server as main.py
            launcher="gunicorn",
        ),
        Config("seeds", "baseline", "gunicorn -w 3 (seeds)", gunicorn_cli("-w", "3")),
        Config(
            "sync-2cpu+1",
            "baseline",
            f"gunicorn sync -w {sync_workers} (2*CPU+1)",
            gunicorn_cli("-w", str(sync_workers)),
        ),
        # bare Flask hello under our launchers and settings: the cost of our middleware
        Config(
            "bare-gunicorn",
            "bare",
            "gunicorn, bare Flask",
            bench_serve("gunicorn", "flask"),
            launcher="gunicorn",
        ),
        Config(
            "bare-granian",
            "bare",
            "granian, bare Flask",
            bench_serve("granian", "flask"),
            needs="granian",
            launcher="granian",
        ),
        Config(
            "bare-waitress",
            "bare",
            "waitress, bare Flask",
            bench_serve("waitress", "flask"),
            launcher="waitress",
        ),
        Config(
            "bare-dev",
            "bare",
            "dev server, bare Flask",
            bench_serve("dev", "flask"),
            dev_ok,
            launcher="dev",
        ),
        # the ceiling: no Flask at all
        Config(
            "ceiling-granian",
            "ceiling",
            "granian, raw WSGI (no Flask)",
            bench_serve("granian", "wsgi"),
            needs="granian",
            launcher="granian",
        ),
        # the cold-start yardstick: plain gunicorn, its defaults, the minimal Flask app
        Config(
            "ref-gunicorn-minimal",
            "reference",
            "gunicorn, defaults, bare Flask",
            gunicorn_cli(target="bench.apps:flask_app"),
            loads=(),
        ),
        # tuning: what the defaults were chosen against
        Config(
            "tune-gevent-w3",
            "tuning",
            f"gunicorn gevent -w {cpus + 1}",
            main_py,
            {"WEB_CONCURRENCY": str(cpus + 1)},
            loads=(C16_KA, C64_KA),
        ),
        Config(
            "tune-gevent-no-yield",
            "tuning",
            "gunicorn gevent, no yield per request",
            gunicorn_cli("-c", "bench/gunicorn_no_yield.py"),
            loads=(C16_KA, C64_KA),
        ),
        Config(
            "tune-gunicorn-preload",
            "tuning",
            "gunicorn_config.py --preload",
            gunicorn_cli("-c", "gunicorn_config.py", "--preload"),
            loads=(),
        ),
        Config(
            "tune-gthread",
            "tuning",
            f"gunicorn gthread {cpus}x4",
            main_py,
            {"WORKER_CLASS": "gthread"},
            loads=(C16_KA, C64_KA),
        ),
        Config(
            "tune-granian-bt1",
            "tuning",
            "granian, 1 blocking thread",
            main_py,
            {"APP_LAUNCHER": "granian", "WEB_THREADS": "1"},
            loads=(C16_KA, C64_KA),
            needs="granian",
        ),
        Config(
            "tune-granian-bt256",
            "tuning",
            "granian, its default 256 threads",
            main_py,
            {"APP_LAUNCHER": "granian", "WEB_THREADS": "256"},
            loads=(C16_KA, C64_KA),
            needs="granian",
        ),
    ]
    return out


def replace_loads(config: Config, loads: Sequence[Load]) -> Config:
    from dataclasses import replace

    return replace(config, loads=tuple(loads))
