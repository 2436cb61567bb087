"""``python -m bench``: run every configuration on this machine, side by side, in one go.

For each configuration: spawn it on a free 127.0.0.1 port, time spawn to the
first 200 (cold start), warm it up, read its memory, load it with wrk at each
load (bounded in time), read its CPU, and stop it by pid with SIGTERM. Rounds are
interleaved (every configuration once, then again) so that a drift of the
machine spreads over all of them; the headline load is repeated in each round
and its median kept. Extra spawns bring each cold start to a median of 7.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import configs as configs_mod
from bench import machine, procs, report, wrk
from bench.configs import HEADLINE, Config

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BENCH_SECRET = "bench-only-secret-key-0123456789abcdef"  # noqa: S105 - a throwaway for local servers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=4, help="seconds of load per run (default 4)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per start (0: none)")
    p.add_argument(
        "--repeats", type=int, default=3, help="rounds for the headline load (default 3)"
    )
    p.add_argument("--cold-starts", type=int, default=7, help="spawns per cold-start median")
    p.add_argument("--only", default="", help="comma-separated configuration names")
    p.add_argument("--no-tuning", action="store_true", help="skip the tuning alternatives")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a fast end-to-end check: 1 s runs, no warm-up, one round, headline load only",
    )
    p.add_argument(
        "--results", type=Path, default=RESULTS, help="where bench.json and bench.png go"
    )
    p.add_argument("--docs", default=str(DOCS), help="the performance page to write, or 'none'")
    p.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: remake the table, chart and page from --results' bench.json",
    )
    p.add_argument(
        "--wait",
        type=int,
        default=300,
        help="seconds to wait, before each measurement, for another test run to end (300)",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.duration, args.warmup, args.repeats, args.cold_starts = 1, 0, 1, 1
        args.no_tuning = True
    for name in ("duration", "repeats", "cold_starts"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def server_env(overrides: dict[str, str], port: int) -> dict[str, str]:
    """The shipped defaults: none of our variables from this shell, production, one port."""
    from launchers.settings import SETTINGS

    ours = {s.env for s in SETTINGS} | {
        "FLASK_ENV",
        "REPLIT_DEPLOYMENT",
        "ENV_FILE",
        "GUNICORN_CMD_ARGS",
        "FORWARDED_ALLOW_IPS",
    }
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(
        APP_ENV="production",
        SECRET_KEY=BENCH_SECRET,
        HOST="127.0.0.1",
        PORT=str(port),
        ENV_FILE="none",
        **overrides,
    )
    return env


def spawn(config: Config) -> procs.Server:
    port = procs.free_port()
    server = procs.Server(config.command(port), server_env(config.env, port), port).start()
    try:
        server.wait_ready()
    except Exception:
        server.stop(grace=2)
        raise
    return server


def measure_inprocess(seconds: float) -> dict:
    """Microseconds per request of each app called directly (bench.inprocess)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", str(seconds)],
        env=server_env({}, 5000),
        cwd=procs.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.inprocess failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Record:
    """Everything measured for one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.runs: dict[str, list[dict]] = {}
        self.cold_starts: list[float] = []
        self.memory: dict | None = None
        self.cpu_s_per_10k: float | None = None
        self.exit_codes: list[int | None] = []
        self.warmup_errors = 0
        self.failure = ""
        self.contended = False  # measured while other programs took CPU, even after retries

    MEASURED = ("runs", "cold_starts", "memory", "cpu_s_per_10k", "exit_codes", "warmup_errors")

    def state(self) -> dict:
        return {name: getattr(self, name) for name in self.MEASURED}

    def restore(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def as_dict(self) -> dict:
        c = self.config
        loads = {}
        for key, runs in self.runs.items():
            loads[key] = {
                "rps": statistics.median(r["rps"] for r in runs),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "runs": runs,
            }
        return {
            "name": c.name,
            "group": c.group,
            "label": c.label,
            "launcher": c.launcher,
            "command": c.describe_command(),
            "planned_loads": [load.key for load in c.loads],
            "loads": loads,
            "cold_start_ms": {
                "median": round(statistics.median(self.cold_starts) * 1000, 1)
                if self.cold_starts
                else None,
                "samples": [round(s * 1000, 1) for s in self.cold_starts],
            },
            "memory_after_warmup": self.memory,
            "cpu_s_per_10k": self.cpu_s_per_10k,
            "exit_codes_on_sigterm": self.exit_codes,
            "warmup_errors": self.warmup_errors,
            "failure": self.failure,
            "contended": self.contended,
        }


FOREIGN_LIMIT = 0.15  # CPUs' worth of work by other processes during a run that spoils it


def measure_round(record: Record, args: argparse.Namespace, first: bool, log) -> float:
    """One start of the configuration and its loads; returns the worst foreign CPU share.

    Foreign CPU: what the whole machine spent busy during a wrk run, minus what the
    server's processes, wrk and the bench spent: another program competing for the CPUs.
    """
    c = record.config
    worst = 0.0
    server = spawn(c)
    try:
        record.cold_starts.append(server.cold_start_s)
        if args.warmup:
            record.warmup_errors += wrk.run(server.port, server.path, HEADLINE, args.warmup).errors
        if first:
            record.memory = procs.memory(server.pids())
        loads = c.loads if first else [x for x in c.loads if x == HEADLINE]
        for load in loads:
            pids = server.pids()
            cpu_before = procs.cpu_seconds(pids)
            busy_before, own_before = procs.system_busy_seconds(), procs.own_seconds()
            result = wrk.run(server.port, server.path, load, args.duration)
            used = procs.cpu_seconds(pids) - cpu_before
            ours = used + procs.own_seconds() - own_before
            foreign = (procs.system_busy_seconds() - busy_before - ours) / max(result.seconds, 0.1)
            worst = max(worst, foreign)
            if first and load == HEADLINE and result.requests:
                record.cpu_s_per_10k = round(used / result.requests * 10_000, 3)
            run = result.as_dict() | {"foreign_cpus": round(foreign, 3)}
            record.runs.setdefault(load.key, []).append(run)
            log(
                f"  {c.name:<22} {load.key:<14} {result.rps:>9,.0f} req/s  "
                f"p50 {result.p50_ms:>7.2f} ms  p99 {result.p99_ms:>7.2f} ms  "
                f"errors {result.errors}  foreign CPU {foreign:.2f}"
            )
    finally:
        record.exit_codes.append(server.stop())
    return worst


def wait_for_other_tests(limit: float, log) -> bool:
    """Wait (at most ``limit`` seconds) while another pytest run shares the CPUs."""
    deadline = time.monotonic() + limit
    others = procs.other_tests_running()
    if others:
        log(f"  waiting for another test run to finish (pid {', '.join(map(str, others))})")
    while others and time.monotonic() < deadline:
        time.sleep(5)
        others = procs.other_tests_running()
    return not others


def measure_quietly(record: Record, args: argparse.Namespace, first: bool, log) -> None:
    """measure_round, measured again (at most twice) when another program took CPU meanwhile."""
    for attempt in range(3):
        if not args.smoke and not wait_for_other_tests(args.wait, log):
            record.contended = True
        saved = copy.deepcopy(record.state())
        worst = measure_round(record, args, first, log)
        if args.smoke or worst <= FOREIGN_LIMIT:
            return
        if attempt < 2:
            log(f"  {record.config.name}: other programs used {worst:.2f} CPUs; measuring again")
            record.restore(saved)
            time.sleep(5)
    record.contended = True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def stop_on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every server's stop()

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print(
            "bench: interrupted; every server it started was stopped, nothing written",
            file=sys.stderr,
        )
        return 130


def write_outputs(results: dict, args: argparse.Namespace, log) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    json_path = args.results / "bench.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    png_path = args.results / "bench.png"
    report.chart(results, png_path)
    print()
    print(report.table(results))
    print()
    print(report.goals_text(results))
    if args.docs.lower() != "none":
        docs = Path(args.docs)
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(report.performance_page(results, png_path, docs))
        log(f"wrote {docs}")
    log(f"wrote {json_path} and {png_path}")


def _main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.render_only:
        results = json.loads((args.results / "bench.json").read_text())
        results["summary"] = report.summarize(results)
        write_outputs(results, args, lambda line: print(line, flush=True))
        return 0
    try:
        wrk.wrk_path()
    except wrk.WrkMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not report.can_chart():
        print(
            "error: the chart needs matplotlib: pip install -r bench/requirements.txt",
            file=sys.stderr,
        )
        return 2

    def log(line: str) -> None:
        print(line, flush=True)

    info = machine.describe()
    busy = machine.busy_note()
    if busy:
        log(f"warning: {busy}")
    cpus = info["usable_cpus"]
    chosen = configs_mod.configurations(cpus)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {c.name for c in chosen}
        if unknown:
            print(f"error: unknown configuration(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        chosen = [c for c in chosen if c.name in wanted]
    if args.no_tuning:
        chosen = [c for c in chosen if c.group != "tuning"]
    if args.smoke:
        chosen = [configs_mod.replace_loads(c, [HEADLINE] if c.loads else []) for c in chosen]
    skipped = [c for c in chosen if not c.available()]
    for c in skipped:
        log(
            f"skipped {c.name}: {c.needs} is not installed (pip install -r requirements-{c.needs}.txt)"
        )
    records = [Record(c) for c in chosen if c.available()]

    log(f"bench: {len(records)} configurations on {info['cpu_model']} ({cpus} usable CPUs)")
    for round_no in range(args.repeats):
        log(f"round {round_no + 1}/{args.repeats}")
        for record in records:
            if record.failure or (round_no and not record.config.loads):
                continue
            try:
                measure_quietly(record, args, round_no == 0, log)
            except Exception as exc:  # one server failing must not hide the others' figures
                record.failure = str(exc)
                log(f"  {record.config.name}: FAILED: {exc}")
    for _ in range(args.cold_starts):
        for record in records:
            if record.failure or len(record.cold_starts) >= args.cold_starts:
                continue
            if not args.smoke and not wait_for_other_tests(args.wait, log):
                record.contended = True
            try:
                server = spawn(record.config)
                record.cold_starts.append(server.cold_start_s)
                record.exit_codes.append(server.stop())
            except Exception as exc:
                record.failure = str(exc)

    log("the app called in-process, no server")
    inprocess = measure_inprocess(0.2 if args.smoke else 1.0)

    results = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": info,
        "method": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "cold_starts": args.cold_starts,
            "wrk": f"wrk -t1 -cN -d{args.duration}s --timeout 2s",
            "path": "/healthz",
            "smoke": args.smoke,
            "seconds": None,
        },
        "skipped": [c.name for c in skipped],
        "configs": [r.as_dict() for r in records],
        "inprocess": inprocess,
    }
    results["summary"] = report.summarize(results)
    results["method"]["seconds"] = round(time.monotonic() - started, 1)

    write_outputs(results, args, log)
    log(f"measured in {results['method']['seconds']} s")
    failed = [r.config.name for r in records if r.failure]
    if failed:
        print(f"error: failed to measure: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
