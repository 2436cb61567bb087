"""One run's results as ratios, a markdown page of figures (figures.md) and a chart.

Figures only: the words that explain them are written by people, in
docs/performance.md. Every lookup tolerates a configuration that was not run
(``--only``, granian not installed): its figures print as "-".
"""

from __future__ import annotations

from pathlib import Path

from bench.configs import HEADLINE

HEAD = HEADLINE.key
LOAD_COLUMNS = {
    "c16-keepalive": "c16 keep-alive",
    "c64-keepalive": "c64 keep-alive",
    "c16-close": "c16 close",
    "c64-close": "c64 close",
}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def ratios(results: dict) -> list[dict]:
    """The comparisons future work is judged by, each within this one run, with its goal."""
    by_name = {c["name"]: c for c in results["configs"]}

    def head(name: str, figure: str = "rps") -> float | None:
        load = by_name.get(name, {}).get("loads", {}).get(HEAD)
        return load[figure] if load else None

    def cold(config: dict | None) -> float | None:
        return config["cold_start_ms"]["median"] if config else None

    rows: list[dict] = []

    def add(key: str, text: str, value: float | None, goal: tuple[str, float] | None = None):
        met = None
        if value is not None and goal:
            met = value >= goal[1] if goal[0] == ">=" else value <= goal[1]
        rows.append({"key": key, "text": text, "value": value, "goal": goal, "met": met})

    inprocess = results.get("inprocess") or {}
    breakdown = results.get("inprocess_breakdown") or {}
    bare_us = inprocess.get("bare_flask_us")
    add(
        "inprocess",
        "µs per request in process (no server), the starter (every feature on, the access "
        "line written) against a bare Flask app",
        _ratio(inprocess.get("ours_us"), bare_us),
        ("<=", 1.1),
    )
    add(
        "inprocess-no-access-log",
        "µs per request in process, the starter with LOG_LEVEL=warning (no access line) "
        "against a bare Flask app",
        _ratio(breakdown.get("ours_no_access_log_us"), bare_us),
    )
    add(
        "inprocess-sessions",
        "µs per request in process, a bare Flask app with a SECRET_KEY (Flask's own "
        "session on every request) against one without",
        _ratio(breakdown.get("bare_flask_sessions_us"), bare_us),
    )
    add(
        "inprocess-metrics",
        "µs per request in process, the starter with METRICS on against it off",
        _ratio(breakdown.get("ours_metrics_us"), inprocess.get("ours_us")),
        ("<=", 1.15),
    )
    for launcher in ("gunicorn", "granian", "waitress"):
        add(
            f"starter-vs-bare-{launcher}",
            f"req/s under our {launcher}, the starter against a bare Flask app "
            "(goal: its code costs at most 10 %)",
            _ratio(head(f"ours-{launcher}"), head(f"bare-{launcher}")),
            (">=", 0.9),
        )
    seeds_goals = {  # (req/s goal, p99 goal) against the seeds' configuration
        "gunicorn": ((">=", 1.6), ("<=", 2.0)),
        "granian": ((">=", 3.0), None),  # the fastest launcher offered
        "waitress": (None, None),
    }
    for launcher, (rps_goal, p99_goal) in seeds_goals.items():
        ours = f"ours-{launcher}"
        against = f"{launcher} as shipped against the seeds' gunicorn -w 3 wsgi:app"
        rps, p99 = (
            _ratio(head(ours), head("seeds")),
            _ratio(head(ours, "p99_ms"), head("seeds", "p99_ms")),
        )
        add(f"{launcher}-rps-vs-seeds", f"req/s at c64 keep-alive, {against}", rps, rps_goal)
        add(f"{launcher}-p99-vs-seeds", f"p99 at c64 keep-alive, {against}", p99, p99_goal)
    reference = next((c for c in results["configs"] if c["group"] == "reference"), None)
    add(
        "cold-start",
        "cold start (spawn to first 200), python main.py under gunicorn against "
        f"{reference['label'] if reference else 'gunicorn -w 1'}",
        _ratio(cold(by_name.get("ours-gunicorn")), cold(reference)),
        ("<=", 1.3),
    )
    add(
        "ceiling",
        "req/s under granian, a raw WSGI hello against the starter",
        _ratio(head("ceiling-granian"), head("ours-granian")),
    )
    errors = sum(
        c["warmup_errors"] + sum(load["errors"] for load in c["loads"].values())
        for c in results["configs"]
    )
    add("errors", "errors in every run, warm-ups included (as wrk counts them)", errors, ("<=", 0))
    return rows


# --- figures.md ---------------------------------------------------------------------------


IN_PROCESS = {
    "bare_flask_us": "a bare Flask app (bench/apps.py)",
    "ours_us": "the starter, production settings, access log line written",
    "bare_flask_sessions_us": "the bare Flask app with a SECRET_KEY (Flask's session on)",
    "ours_no_access_log_us": "the starter with LOG_LEVEL=warning: no access line",
    "ours_metrics_us": "the starter with METRICS on (multiprocess folder)",
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _number(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _ratio_row(r: dict) -> list[str]:
    if r["key"] == "errors":
        value, goal = str(r["value"]), "0"
    else:
        value = _number(r["value"], 2, "x")
        goal = f"{r['goal'][0]} {r['goal'][1]}x" if r["goal"] else ""
    verdict = {True: "met", False: "**missed**", None: ""}[r["met"]]
    return [r["text"], value, goal, verdict]


def _config_row(c: dict) -> list[str]:
    def cell(load: dict | None) -> str:
        return (
            f"{load['rps']:,.0f} ({load['p50_ms']:.1f} / {load['p99_ms']:.1f} ms)" if load else "-"
        )

    mem = c["memory_after_warmup"]
    errors = c["warmup_errors"] + sum(load["errors"] for load in c["loads"].values())
    flags = " (failed)" if c["failure"] else " (contended)" if c.get("contended") else ""
    return [
        c["label"] + flags,
        *(cell(c["loads"].get(key)) for key in LOAD_COLUMNS),
        str(errors),
        _number(c["cold_start_ms"]["median"], 0, " ms"),
        f"{mem['rss_mib_total']:.0f} / {mem['pss_mib_total']:.0f} MiB ({mem['processes']})"
        if mem
        else "-",
        _number(c["cpu_s_per_10k"], 2),
    ]


def figures_markdown(results: dict) -> str:
    m, method = results["machine"], results["method"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    inprocess = (results.get("inprocess") or {}) | (results.get("inprocess_breakdown") or {})
    configs = results["configs"]
    parts = [
        "# Bench figures",
        f"Measured by `python -m bench` on {results['generated']}, in {method['seconds']} s"
        f"{' (--smoke: a check, not a measurement)' if method['smoke'] else ''}. Made from "
        "bench.json, and made again by the next run: what the figures mean is in "
        "docs/performance.md.",
        f"- machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['usable_cpus']} usable; "
        f"{_number(m['memory_gib'], 1)} GiB; {m['os']}, Linux {m['kernel']}; "
        f"Python {m['python']}\n- packages: {packages}\n"
        f"- load: {m['wrk']}, `{method['wrk']}` on GET /healthz, {method['warmup_s']} s of "
        f"warm-up per start; c64 keep-alive: median of {method['repeats']} interleaved rounds, "
        f"other loads once; cold start: median of {method['cold_starts']} spawns",
        "## Ratios",
        _table(["ratio", "measured", "goal", ""], [_ratio_row(r) for r in ratios(results)]),
        "## Per configuration",
        "Each load: req/s (p50 / p99 latency). Memory after warm-up: RSS / PSS (shared pages "
        "counted once) summed over the server's processes. CPU: seconds of all the server's "
        "processes per 10,000 requests at c64 keep-alive.",
        _table(
            ["configuration", *LOAD_COLUMNS.values(), "errors", "cold start", "RSS / PSS (procs)"]
            + ["CPU s / 10k"],
            [_config_row(c) for c in configs],
        ),
        "## In process, no server",
        _table(
            ["app", "µs of CPU per request (median)"],
            [[IN_PROCESS.get(name, name), _number(us, 1)] for name, us in inprocess.items()],
        ),
        "## Commands",
        "Each with APP_ENV=production, SECRET_KEY set, HOST=127.0.0.1, ENV_FILE=none.",
        _table(
            ["configuration", "group", "command"],
            [[c["label"], c["group"], f"`{c['command']}`"] for c in configs],
        ),
    ]
    if results.get("skipped"):
        parts.append(f"Skipped (an optional package missing): {', '.join(results['skipped'])}.")
    for c in configs:
        if c["failure"]:
            parts.append(f"{c['name']} failed: {c['failure'].splitlines()[0]}")
    return "\n\n".join(parts) + "\n"


# --- bench.png ----------------------------------------------------------------------------

GROUP_COLOURS = {"ours": "#1f77b4", "baseline": "#7f7f7f", "bare": "#9ecae1", "ceiling": "#2ca02c"}
OTHER_COLOUR = "#ff7f0e"


def can_chart() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def chart(results: dict, path: Path) -> None:
    """req/s and p99 at the headline load, one bar per configuration, slowest at the bottom."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    loaded = sorted(
        (c for c in results["configs"] if c["loads"].get(HEAD)),
        key=lambda c: c["loads"][HEAD]["rps"],
    )
    if not loaded:
        return
    fig, (ax_rps, ax_p99) = plt.subplots(
        1, 2, figsize=(13, 0.42 * len(loaded) + 1.8), sharey=True, width_ratios=(3, 2)
    )
    y = list(range(len(loaded)))
    colours = [GROUP_COLOURS.get(c["group"], OTHER_COLOUR) for c in loaded]
    for ax, figure, text, unit in (
        (ax_rps, "rps", "requests per second", "{:,.0f}"),
        (ax_p99, "p99_ms", "p99 latency, ms (log scale)", "{:.1f}"),
    ):
        values = [c["loads"][HEAD][figure] for c in loaded]
        ax.barh(y, values, color=colours)
        for i, v in zip(y, values, strict=True):
            ax.text(v, i, " " + unit.format(v), va="center", fontsize=8)
        ax.set_xlabel(f"{text}, c64 keep-alive")
    ax_rps.set_xlim(0, max(c["loads"][HEAD]["rps"] for c in loaded) * 1.18)
    ax_p99.set_xscale("log")  # one second-long tail would flatten every other bar
    p99 = [c["loads"][HEAD]["p99_ms"] for c in loaded]
    ax_p99.set_xlim(min(p99) / 1.5, max(p99) * 3)
    ax_rps.set_yticks(y, [c["label"] for c in loaded], fontsize=9)
    m = results["machine"]
    fig.suptitle(
        f"GET /healthz on {m['usable_cpus']} CPUs ({m['cpu_model']}), wrk on the same machine; "
        f"{results['generated']}",
        fontsize=10,
    )
    groups = list(dict.fromkeys(c["group"] for c in loaded))
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=GROUP_COLOURS.get(g, OTHER_COLOUR)) for g in groups
    ]
    fig.legend(handles, groups, loc="lower center", ncol=len(groups), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
