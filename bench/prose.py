"""docs/performance.md: the figures of one run, with the words that explain them.

Every number on the page comes from the run's results; the words around them
are fixed, and where a sentence depends on a verdict (a goal met or missed)
it is chosen from the figures too.
"""

from __future__ import annotations

from bench import report
from bench.configs import HEADLINE

HEAD = HEADLINE.key


class Figures:
    """Lookups into one run's results that never fail: a missing figure prints as '-'."""

    def __init__(self, results: dict) -> None:
        self.results = results
        self.by = {c["name"]: c for c in results["configs"]}

    def load(self, name: str, key: str = HEAD) -> dict | None:
        config = self.by.get(name)
        return config["loads"].get(key) if config else None

    def rps(self, name: str, key: str = HEAD) -> float | None:
        load = self.load(name, key)
        return load["rps"] if load else None

    def p99(self, name: str, key: str = HEAD) -> float | None:
        load = self.load(name, key)
        return load["p99_ms"] if load else None

    def p50(self, name: str, key: str = HEAD) -> float | None:
        load = self.load(name, key)
        return load["p50_ms"] if load else None

    def errors(self, name: str, key: str = HEAD) -> int | None:
        load = self.load(name, key)
        return load["errors"] if load else None

    def cold(self, name: str) -> float | None:
        config = self.by.get(name)
        return config["cold_start_ms"]["median"] if config else None

    def memory(self, name: str) -> dict | None:
        config = self.by.get(name)
        return config["memory_after_warmup"] if config else None

    def cpu(self, name: str) -> float | None:
        config = self.by.get(name)
        return config["cpu_s_per_10k"] if config else None


def n(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def x(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def pct(a: float | None, b: float | None) -> str:
    """How much lower a is than b, in per cent."""
    return f"{(1 - a / b) * 100:.0f} %" if a is not None and b else "-"


def summary_section(results: dict) -> str:
    f = Figures(results)
    s = results["summary"]
    mw = s["middleware_cost"]
    costs = [v for v in mw.values() if v is not None]
    cost_range = (
        f"{min(costs) * 100:.0f}-{max(costs) * 100:.0f} %"
        if len(costs) > 1
        else (f"{costs[0] * 100:.0f} %" if costs else "-")
    )
    met = {g["key"]: g["met"] for g in s["goals"]}
    held = [
        name
        for key, name in (
            ("default-throughput", "the default's"),
            ("fastest-throughput", "granian's"),
        )
        if met.get(key) is False
    ]
    if held:
        limit = (
            f"it is what holds {' and '.join(held)} "
            f"{'ratios below their goals' if len(held) > 1 else 'ratio below its goal'}: the bare Flask hello "
            f"reached {x(f.rps('bare-gunicorn'), f.rps('seeds'))} the seeds' config under our "
            f"gunicorn and {x(f.rps('bare-granian'), f.rps('seeds'))} under granian"
        )
    else:
        limit = "the throughput goals above are met even so"
    cold_why = ", the gevent worker's start-up" if met.get("cold-start") is False else ""
    return f"""## In short

- gunicorn as shipped (gevent, one worker per CPU): **{s["default_vs_seeds"] or "-"}x** the
  seeds' `gunicorn -w 3 wsgi:app` in req/s at c64 with keep-alive, p99
  **{s["default_p99_vs_seeds"] or "-"}x** theirs.
- The fastest launcher offered, {f.by[s["fastest"]]["label"] if s["fastest"] in f.by else "-"}:
  **{s["fastest_vs_seeds"] or "-"}x** the seeds' config.
- Our middleware costs **{cost_range}** of req/s against a bare Flask hello under the same
  server; {limit}.
- Cold start of `python main.py` in production: **{s["cold_start_vs_minimal_gunicorn"] or "-"}x**
  plain gunicorn on a minimal app{cold_why}.
- Errors: **{s["errors"]}** in every shipped and baseline configuration."""


def machine_section(results: dict) -> str:
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    method = results["method"]
    return f"""## The machine

- CPU: {m["cpu_model"]}, {m["nproc"]} CPUs (`nproc`), {m["usable_cpus"]} usable by this process
- memory: {n(m["memory_gib"], 1)} GiB; {m["os"]}, Linux {m["kernel"]}; Python {m["python"]}
- packages: {packages}
- load: {m["wrk"]}, `wrk -t1 -cN -d{method["duration_s"]}s --timeout 2s` against
  `GET /healthz` on 127.0.0.1, after {method["warmup_s"]} s of warm-up per start; the c64
  keep-alive figure is the median of {method["repeats"]} rounds run one after the other over
  every configuration, the other loads are measured once
- wrk runs on the same machine and takes about one of its CPUs: read the ratios, not the
  absolute numbers, and take differences under about 20 % as noise"""


def configurations_section(results: dict) -> str:
    lines = [
        "## The configurations",
        "",
        "| configuration | group | command (APP_ENV=production, SECRET_KEY set, HOST=127.0.0.1) |",
        "|---|---|---|",
    ]
    for c in results["configs"]:
        lines.append(f"| {c['label']} | {c['group']} | `{c['command']}` |")
    if results["skipped"]:
        lines += ["", f"Skipped (an optional package missing): {', '.join(results['skipped'])}."]
    lines += [
        "",
        "*ours* is `python main.py` as shipped; *bare* is the same launcher and settings serving a "
        "bare Flask app with the same `/healthz` route and nothing else (`bench/apps.py`); "
        "*ceiling* is a raw WSGI callable with no Flask; *reference* is plain `gunicorn` with its "
        "own defaults on the bare Flask app, the yardstick for cold start; *tuning* are the "
        "alternatives the defaults were chosen against.",
    ]
    return "\n".join(lines)


def meaning_section(results: dict) -> str:
    f = Figures(results)
    s = results["summary"]
    ip = results.get("inprocess") or {}
    fastest = s["fastest"] or "-"
    fastest_label = f.by[fastest]["label"] if fastest in f.by else "-"
    mw = s["middleware_cost"]
    mw_text = ", ".join(f"{k} {v * 100:.0f} %" for k, v in mw.items()) or "-"

    out = ["## What the ratios mean", ""]
    out.append(
        f"**The default against the seeds.** gunicorn as shipped served "
        f"{n(f.rps('ours-gunicorn'))} req/s at c64 with keep-alive, "
        f"{x(f.rps('ours-gunicorn'), f.rps('seeds'))} the seeds' `gunicorn -w 3 wsgi:app` "
        f"({n(f.rps('seeds'))} req/s), with a p99 of {n(f.p99('ours-gunicorn'), 1)} ms against "
        f"{n(f.p99('seeds'), 1)} ms. The seeds' sync workers answer one request at a time each "
        f"and close every connection (sync workers do not keep connections alive), so each "
        f"request pays for a new connection and waits for a free worker; the gevent workers keep "
        f"the 64 connections open and interleave them. The classic `2*CPU+1` sync advice served "
        f"{n(f.rps('sync-2cpu+1'))} req/s: "
        + (
            "no better than 3 workers, as more processes than CPUs only take turns."
            if (f.rps("sync-2cpu+1") or 0) <= 1.2 * (f.rps("seeds") or 0)
            else "more than 3 workers here."
        )
    )
    out.append("")
    out.append(
        f"**The fastest launcher.** {fastest_label}: {n(f.rps(fastest))} req/s, "
        f"{s['fastest_vs_seeds'] or '-'}x the seeds' config, p99 {n(f.p99(fastest), 1)} ms. "
        f"granian parses HTTP and handles connections in Rust; Python only runs the app. The "
        f"ceiling, a raw WSGI callable under the same granian, reached "
        f"{n(f.rps('ceiling-granian'))} req/s: past that point a request's cost is Flask and our "
        f"code, not the server."
    )
    out.append("")
    out.append(
        f"**What our middleware costs.** Against the bare Flask hello under the same server and "
        f"settings, req/s were lower by: {mw_text}. Called in-process with no server at all, a "
        f"request costs {n(ip.get('bare_flask_us'), 0)} µs in the bare Flask app and "
        f"{n(ip.get('ours_us'), 0)} µs in ours ({n(ip.get('ours_without_access_log_us'), 0)} µs "
        f"with the access log off; a raw WSGI hello {n(ip.get('raw_wsgi_us'), 1)} µs). So what "
        f"ours runs around every request (security headers, request id, access log line, "
        f"signed-session set-up, shutdown and in-flight bookkeeping, body guard) adds about "
        f"{n(_diff(ip.get('ours_us'), ip.get('bare_flask_us')))} µs to a request, "
        f"{x(_diff(ip.get('ours_us'), ip.get('bare_flask_us')), ip.get('bare_flask_us'))} what "
        f"Flask itself costs; the faster the server, the larger its share. That is what limits "
        f"this goal: each of those features is Python code run on every request, and the goal "
        f"allows them about a tenth of a request's whole cost, server and Flask included."
    )
    out.append("")
    ratio = s["cold_start_vs_minimal_gunicorn"]
    out.append(
        f"**Cold start.** `python main.py` in production answered its first request "
        f"{n(f.cold('ours-gunicorn'))} ms after it was spawned; plain `gunicorn` with its sync "
        f"default on the bare Flask app took {n(f.cold('ref-gunicorn-minimal'))} ms "
        f"({ratio or '-'}x). Both import Flask (about 200 ms here); the difference is the gevent "
        f"worker, which imports gevent and patches the standard library before it can answer: "
        f"the bare Flask app under our gevent gunicorn took "
        f"{n(_diff(f.cold('bare-gunicorn'), f.cold('ref-gunicorn-minimal')))} ms more than under "
        f"plain gunicorn (much of it is gevent scanning every installed package's entry points "
        f"for plugins as it patches). The same `python main.py` with `WORKER_CLASS=gthread` started in "
        f"{n(f.cold('tune-gthread'))} ms, and the bare Flask app under our gevent gunicorn in "
        f"{n(f.cold('bare-gunicorn'))} ms: the cost is gevent's more than our code's. granian: "
        f"{n(f.cold('ours-granian'))} ms; waitress {n(f.cold('ours-waitress'))} ms and the dev "
        f"server {n(f.cold('ours-dev'))} ms start one process and fork nothing."
    )
    out.append("")
    gm, sm = f.memory("ours-gunicorn"), f.memory("seeds")
    out.append(
        f"**Memory and CPU.** After warm-up gunicorn as shipped held "
        f"{n(gm['pss_mib_total'] if gm else None)} MiB (PSS, shared pages counted once; "
        f"{gm['processes'] if gm else '-'} processes), the seeds' config "
        f"{n(sm['pss_mib_total'] if sm else None)} MiB. CPU per 10,000 requests, every process "
        f"of the server counted: gunicorn as shipped {n(f.cpu('ours-gunicorn'), 2)} s, the "
        f"seeds' {n(f.cpu('seeds'), 2)} s, granian {n(f.cpu('ours-granian'), 2)} s, waitress "
        f"{n(f.cpu('ours-waitress'), 2)} s."
    )
    out.append("")
    out.append(
        f"**Errors.** {s['errors']} in the runs of every shipped and baseline configuration, "
        f"warm-ups included (socket errors, timeouts over 2 s and non-2xx answers, as wrk counts "
        f"them); {s.get('tuning_errors', '-')} in the rejected tuning alternatives."
    )
    return "\n".join(out)


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def defaults_section(results: dict) -> str:
    f = Figures(results)
    w2, w3 = f.memory("ours-gunicorn"), f.memory("tune-gevent-w3")
    return f"""## How the defaults were chosen

Each choice is also a comment next to the value in the code, with the figure behind it.

- **Worker class: gevent** (`WORKER_CLASS`). It is the only gunicorn worker that keeps
  answering while 300 clients stall mid-request (sync, gthread 2x4 and waitress with its
  default connection limit answered none of 20 ordinary requests; see
  tests/test_slow_clients.py). c64 keep-alive here: gevent {n(f.rps("ours-gunicorn"))} req/s,
  gthread {n(f.rps("tune-gthread"))}, the seeds' sync {n(f.rps("seeds"))}.
- **A yield after each request** (gunicorn's `post_request` hook, gevent only:
  `gevent.idle()`). A gevent worker goes on serving a keep-alive connection for as long as
  its client has the next request ready, so under load a few connections are answered back
  to back while the others wait. Without the yield: p50 {n(f.p50("tune-gevent-no-yield"), 1)}
  ms, p99 {n(f.p99("tune-gevent-no-yield"), 1)} ms and {n(f.errors("tune-gevent-no-yield"))}
  requests timed out (2 s) at c64; with it p99 {n(f.p99("ours-gunicorn"), 1)} ms and
  {n(f.errors("ours-gunicorn"))} errors; req/s {n(f.rps("tune-gevent-no-yield"))} without,
  {n(f.rps("ours-gunicorn"))} with.
  `gevent.sleep(0)` was tried first and is not enough (p99 300-600 ms in A/B runs): it
  resumes the same connection before the loop polls the others.
- **Workers: one per usable CPU** (`WEB_CONCURRENCY`, `workers_for()`). An event-loop worker
  keeps one CPU busy; a third worker on this 2-CPU machine served
  {n(f.rps("tune-gevent-w3"))} req/s (p99 {n(f.p99("tune-gevent-w3"), 1)} ms,
  {n(w3["pss_mib_total"] if w3 else None)} MiB) against two workers' {n(f.rps("ours-gunicorn"))}
  (p99 {n(f.p99("ours-gunicorn"), 1)} ms, {n(w2["pss_mib_total"] if w2 else None)} MiB).
  Usable CPUs are counted from the affinity mask and the cgroup quota, not the host.
- **Threads: 4** (`WEB_THREADS`): waitress's request threads, gthread's threads and
  granian's blocking threads. For granian one thread per worker measured
  {n(f.rps("tune-granian-bt1"))} req/s, four {n(f.rps("ours-granian"))}, granian's own default
  (256 per worker here) {n(f.rps("tune-granian-bt256"))} with p99
  {n(f.p99("tune-granian-bt256"), 1)} ms. One thread is not the default even where it is as
  fast: a single slow request then holds its whole worker (in a separate run, five 2-second
  requests took 7.6 s to drain on SIGTERM with one thread, nearly all of GRACEFUL_TIMEOUT's
  8 s, and 1.6 s with four).
- **`worker_connections` 1000**: the open connections one gevent worker (and waitress) holds.
  It must stay well above the slow-client requirement's 300 stalled clients; at c64 it is
  never reached, so it costs nothing here.
- **Keep-alive 5 s** (`KEEPALIVE`): idle connections are held 5 s, enough for a browser's next
  request. Behind a proxy that pools connections, raise it above the proxy's idle timeout
  (nginx's upstream `keepalive_timeout` is 60 s) so that the app never closes a connection
  the proxy is about to reuse. granian applies it as hyper's header-read timeout, which also
  bounds the idle wait. The bench keeps its connections busy, so it does not measure this.
- **`preload_app` off.** `gunicorn -c gunicorn_config.py --preload` started in
  {n(f.cold("tune-gunicorn-preload"))} ms, without `--preload` {n(f.cold("ours-gunicorn-cli"))} ms:
  no measurable gain (the app is then built in the master instead of the worker, but the
  chain of imports before the first answer is the same), so gunicorn's default stays: each
  worker builds its own app after gevent has patched the standard library.
- **No lazy imports.** Before the first answer, one process must import Flask and the app
  and one worker must import and apply gevent, whichever process does it: moving an import
  only moves it along the same chain.
- **`gunicorn[fast]` not used.** gunicorn 27.0.1's `fast` extra requires
  `gunicorn_h1c >= 0.6.14`, and PyPI's newest is 0.6.9, so the extra cannot be installed. In a
  separate A/B run (not in the table) with `gunicorn_h1c` 0.6.9 installed on its own, which
  gunicorn then uses, ours served about the same (3,931 against 3,900 req/s): parsing is a
  small part of a request that mostly runs the app."""


def method_section(results: dict) -> str:
    return """## How it measures

For each configuration the bench spawns the server on a free 127.0.0.1 port in its own
session, polls `GET /healthz` every 5 ms until the first 200 (the cold start), warms it up,
reads the RSS and PSS of every process of the server from /proc, runs wrk at each load, reads
the CPU time of those processes before and after the c64 keep-alive run, and stops the server
with SIGTERM to its pid (SIGKILL to its session if it is still there 10 s later). Rounds go
over every configuration before repeating, so a drift of the machine spreads over all of
them; extra spawns bring every cold start to a median. Every wrk run is bounded by its
duration (and killed 15 s past it), every wait has a deadline, and nothing listens beyond
127.0.0.1. The tests run the same command with `--smoke` (1 s runs) and assert no timing.

    python -m bench --help                 # durations, rounds, a subset with --only
    python -m bench --only ours-gunicorn,seeds --docs none"""


def reflow(text: str) -> str:
    """Join each list item's continuation lines: the figures make manual wrapping ragged."""
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith("  ") and lines and lines[-1].startswith("- "):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return "\n".join(lines)


def page_text(results: dict, chart_link: str) -> str:
    method = results["method"]
    header = f"""# Performance

How fast each launcher serves this app, measured side by side on one machine by one command:

```sh
sudo apt-get install -y wrk                        # Debian's HTTP load generator
.venv/bin/pip install -r bench/requirements.txt    # matplotlib, for the chart
.venv/bin/python -m bench                          # rewrites this page and bench/results/
```

Everything below comes from one run of that command ({results["generated"]},
{n(method["seconds"])} s). The chart is `bench/results/bench.png`, the raw figures
`bench/results/bench.json`."""
    results_section = f"""## Results

![req/s and p99 latency at c64 with keep-alive, per configuration]({chart_link})

Each cell is req/s (p50 / p99 latency) for one load: 16 or 64 connections, kept alive or a new
connection per request (`Connection: close`). Cold start: spawn to the first 200, median of
{method["cold_starts"]}. Memory after warm-up: RSS summed over the server's processes / PSS
(shared pages counted once), and the number of processes. CPU: seconds of CPU of all the
server's processes per 10,000 requests at c64 with keep-alive.

{report.markdown_table(results)}"""
    goals = f"""## Goals

{report.goals_markdown(results)}"""
    return (
        "\n\n".join(
            [
                header,
                reflow(summary_section(results)),
                reflow(machine_section(results)),
                results_section,
                goals,
                meaning_section(results),
                reflow(defaults_section(results)),
                configurations_section(results),
                method_section(results),
            ]
        )
        + "\n"
    )
