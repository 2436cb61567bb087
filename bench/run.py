"""``python -m bench``: start each configuration, load it with wrk, stop it; write the figures.

Each start: spawn the server on a free 127.0.0.1 port and time spawn to the first
200 (cold start), warm it up, read its memory, run wrk at each load while reading
its CPU, then stop it with SIGTERM. Rounds are interleaved (every configuration
once, then again) so that a drift of the machine spreads over all of them; the
c64 keep-alive load is repeated each round and its median kept, and extra spawns
bring each cold start to a median. A start during which other programs took CPU
is measured again. Writes bench.json, bench.png and figures.md to bench/results/
(with --smoke, to a temporary directory); docs/performance.md is written by people.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import inprocess, machine, processes, report, wrk
from bench.configs import ALL_LOADS, CONFIGS, HEADLINE, Config, server_env
from bench.wrk import Load

RESULTS = Path(__file__).resolve().parent / "results"
FOREIGN_LIMIT = 0.15  # CPUs' worth of other programs' work during a wrk run that spoils it


def log(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [c.name for c in CONFIGS]
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per start (0: none)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of c64 keep-alive (default 3)")
    p.add_argument("--cold-starts", type=int, default=7, help="spawns per cold-start median")
    p.add_argument("--only", default="", help=f"comma-separated, from: {', '.join(names)}")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a 20-second end-to-end check: 1 s runs, no warm-up, one round, c64 keep-alive "
        "only, written to a temporary directory unless --results is given",
    )
    p.add_argument("--results", type=Path, help="where the figures go (default bench/results)")
    p.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: remake figures.md and bench.png from the results' bench.json",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.duration, args.warmup, args.repeats, args.cold_starts = 1, 0, 1, 1
    for name in ("duration", "repeats", "cold_starts"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(args.only) - set(names)
    if unknown:
        p.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    args.loads = (HEADLINE,) if args.smoke else ALL_LOADS
    return args


@dataclass
class Start:
    """What one start of a server measured."""

    cold_start_s: float
    exit_code: int | None = None
    warmup_errors: int = 0
    memory: dict | None = None
    cpu_s_per_10k: float | None = None
    runs: dict[str, dict] = field(default_factory=dict)
    foreign_cpus: float = 0.0  # the most CPUs other programs took during one of its wrk runs


def start_and_measure(
    config: Config, loads: tuple[Load, ...], args: argparse.Namespace, read_memory: bool
) -> Start:
    port = processes.free_port()
    env = server_env(config.env | {"PORT": str(port)})
    with processes.running(config.command(port), env, port) as server:
        start = Start(server.cold_start_s)
        if args.warmup and loads:
            start.warmup_errors = wrk.run(server.url, HEADLINE, args.warmup).errors
        if read_memory:
            start.memory = processes.memory(server.pids())
        for load in loads:
            pids = server.pids()
            server_before, others_before = processes.cpu_split(pids)
            result = wrk.run(server.url, load, args.duration)
            server_after, others_after = processes.cpu_split(pids)
            foreign = (others_after - others_before) / max(result.seconds, 0.1)
            start.foreign_cpus = max(start.foreign_cpus, foreign)
            if load == HEADLINE and result.requests:
                used = server_after - server_before
                start.cpu_s_per_10k = round(used / result.requests * 10_000, 3)
            start.runs[load.key] = result.as_dict() | {"foreign_cpus": round(foreign, 3)}
            log(
                f"  {config.name:<16} {load.key:<14} {result.rps:>9,.0f} req/s  "
                f"p50 {result.p50_ms:>7.2f} ms  p99 {result.p99_ms:>7.2f} ms  "
                f"errors {result.errors}  foreign CPU {foreign:.2f}"
            )
    start.exit_code = server.exit_code
    return start


@dataclass
class Record:
    """Everything measured for one configuration, over all its starts."""

    config: Config
    loads: tuple[Load, ...]
    cold_starts: list[float] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    warmup_errors: int = 0
    memory: dict | None = None
    cpu_s_per_10k: list[float] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)
    failure: str = ""
    contended: bool = False  # other programs took CPU even in its last attempt

    def add(self, start: Start) -> None:
        self.cold_starts.append(start.cold_start_s)
        self.exit_codes.append(start.exit_code)
        self.warmup_errors += start.warmup_errors
        self.memory = self.memory or start.memory
        if start.cpu_s_per_10k is not None:
            self.cpu_s_per_10k.append(start.cpu_s_per_10k)
        for key, run in start.runs.items():
            self.runs.setdefault(key, []).append(run)

    def as_dict(self) -> dict:
        def median(values: list[float], digits: int) -> float | None:
            return round(statistics.median(values), digits) if values else None

        loads = {
            key: {
                "rps": median([r["rps"] for r in runs], 1),
                "p50_ms": median([r["p50_ms"] for r in runs], 2),
                "p99_ms": median([r["p99_ms"] for r in runs], 2),
                "errors": sum(r["errors"] for r in runs),
                "runs": runs,
            }
            for key, runs in self.runs.items()
        }
        return {
            "name": self.config.name,
            "group": self.config.group,
            "label": self.config.label,
            "command": self.config.shown(),
            "planned_loads": [load.key for load in self.loads],
            "loads": loads,
            "cold_start_ms": {
                "median": median([s * 1000 for s in self.cold_starts], 1),
                "samples": [round(s * 1000, 1) for s in self.cold_starts],
            },
            "memory_after_warmup": self.memory,
            "cpu_s_per_10k": median(self.cpu_s_per_10k, 3),
            "exit_codes_on_sigterm": self.exit_codes,
            "warmup_errors": self.warmup_errors,
            "failure": self.failure,
            "contended": self.contended,
        }


def measure_quietly(
    record: Record, loads: tuple[Load, ...], args: argparse.Namespace, read_memory: bool
) -> None:
    """One start, measured again (twice at most) while other programs take CPU meanwhile."""
    for attempt in range(3):
        start = start_and_measure(record.config, loads, args, read_memory)
        quiet = args.smoke or start.foreign_cpus <= FOREIGN_LIMIT
        if quiet or attempt == 2:
            break
        log(f"  {record.config.name}: other programs took {start.foreign_cpus:.2f} CPUs; again")
        time.sleep(5)
    record.contended |= not quiet
    record.add(start)


def measure_all(records: list[Record], args: argparse.Namespace) -> None:
    for round_no in range(args.repeats):
        log(f"round {round_no + 1}/{args.repeats}")
        first = round_no == 0
        for record in records:
            if record.failure or not (first or record.loads):
                continue
            try:
                measure_quietly(record, record.loads if first else (HEADLINE,), args, first)
            except Exception as exc:  # one server failing must not hide the others' figures
                record.failure = str(exc)
                log(f"  {record.config.name}: FAILED: {exc}")
    log(f"cold starts, {args.cold_starts} each")
    for _ in range(args.cold_starts):
        for record in records:
            if not record.failure and len(record.cold_starts) < args.cold_starts:
                try:
                    record.add(start_and_measure(record.config, (), args, read_memory=False))
                except Exception as exc:
                    record.failure = str(exc)
                    log(f"  {record.config.name}: FAILED: {exc}")


def render(results: dict, directory: Path) -> None:
    """figures.md and bench.png from the results; the figures printed too."""
    figures = report.figures_markdown(results)
    (directory / "figures.md").write_text(figures)
    report.chart(results, directory / "bench.png")
    print("\n" + figures)
    log(f"wrote {directory / 'figures.md'} and {directory / 'bench.png'}")


def measure(args: argparse.Namespace) -> int:
    began = time.monotonic()
    chosen = [c for c in CONFIGS if not args.only or c.name in args.only]
    skipped = [c for c in chosen if not c.available()]
    for c in skipped:
        log(f"skipped {c.name}: {c.needs} is missing (pip install -r requirements-{c.needs}.txt)")
    records = [Record(c, args.loads if c.loaded else ()) for c in chosen if c.available()]
    info = machine.describe()
    log(f"bench: {len(records)} configurations, {info['usable_cpus']} usable CPUs")
    measure_all(records, args)
    log("in process, no server")
    failed = [r.config.name for r in records if r.failure]
    try:
        per_request = inprocess.measure(0.4 if args.smoke else 3.0)
    except Exception as exc:  # the servers' figures are still worth writing
        per_request = {}
        failed.append(f"in-process ({exc})")
    goal_pair = {k: v for k, v in per_request.items() if k in inprocess.GOAL}
    results = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": info,
        "method": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "cold_starts": args.cold_starts,
            "wrk": f"wrk -t1 -cN -d{args.duration}s --timeout 2s",
            "path": processes.HEALTHZ,
            "smoke": args.smoke,
            "seconds": round(time.monotonic() - began, 1),
        },
        "skipped": [c.name for c in skipped],
        "configs": [r.as_dict() for r in records],
        "inprocess": goal_pair,
        "inprocess_breakdown": {k: v for k, v in per_request.items() if k not in goal_pair},
    }
    results["ratios"] = report.ratios(results)
    # A 1-second check must never replace the figures of a real run.
    directory = args.results or (
        Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke else RESULTS
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    render(results, directory)
    log(f"measured in {results['method']['seconds']} s; all figures in {directory / 'bench.json'}")
    if failed:
        print(f"error: failed to measure: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.render_only:
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

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every server's stop(), as Ctrl-C does

    signal.signal(signal.SIGTERM, interrupt)
    try:
        if args.render_only:
            directory = args.results or RESULTS
            render(json.loads((directory / "bench.json").read_text()), directory)
            return 0
        return measure(args)
    except ImportError as exc:  # the project's API moved: bench/project.py is where to adapt
        print(f"error: {exc}: adapt bench/project.py to the project's API", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every server it started was stopped", file=sys.stderr)
        return 130
