"""Turn the bench's results into a table, goals, a chart and docs/performance.md."""

from __future__ import annotations

import os
from pathlib import Path

from bench.configs import HEADLINE

HEAD = HEADLINE.key
LOAD_KEYS = ("c16-keepalive", "c64-keepalive", "c16-close", "c64-close")


def can_chart() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# --- figures --------------------------------------------------------------------------


def _by_name(results: dict) -> dict[str, dict]:
    return {c["name"]: c for c in results["configs"]}


def _head(config: dict | None, field: str = "rps") -> float | None:
    if not config:
        return None
    load = config["loads"].get(HEAD)
    return load[field] if load else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summarize(results: dict) -> dict:
    """The ratios the goals are about, each with its verdict."""
    by = _by_name(results)
    seeds = by.get("seeds")
    default = by.get("ours-gunicorn")
    offered = [c for c in results["configs"] if c["group"] == "ours" and _head(c)]
    fastest = max(offered, key=_head, default=None)

    middleware = {}
    for c in offered:
        bare = by.get(f"bare-{c['launcher']}")
        if _head(bare):
            middleware[c["launcher"]] = round(1 - _head(c) / _head(bare), 3)

    ref = by.get("ref-gunicorn-minimal")
    cold_ours = default["cold_start_ms"]["median"] if default else None
    cold_ref = ref["cold_start_ms"]["median"] if ref else None

    def errors_in(configs: list[dict]) -> int:
        return sum(load["errors"] for c in configs for load in c["loads"].values()) + sum(
            c["warmup_errors"] for c in configs
        )

    # The tuning alternatives are rejected options; their errors are evidence, not a defect.
    errors = errors_in([c for c in results["configs"] if c["group"] != "tuning"])
    tuning_errors = errors_in([c for c in results["configs"] if c["group"] == "tuning"])
    failures = [c["name"] for c in results["configs"] if c["failure"]]
    contended = [c["name"] for c in results["configs"] if c.get("contended")]

    goals = [
        _goal(
            "default-throughput",
            "gunicorn as shipped, req/s at c64 with keep-alive, against the seeds' config",
            _ratio(_head(default), _head(seeds)),
            ">=",
            1.6,
        ),
        _goal(
            "default-p99",
            "gunicorn as shipped, p99 at c64 with keep-alive, against the seeds' config",
            _ratio(_head(default, "p99_ms"), _head(seeds, "p99_ms")),
            "<=",
            2.0,
        ),
        _goal(
            "fastest-throughput",
            f"the fastest launcher offered ({fastest['launcher'] if fastest else '-'}), "
            "req/s against the seeds' config",
            _ratio(_head(fastest), _head(seeds)),
            ">=",
            3.0,
        ),
    ]
    for launcher, cost in middleware.items():
        goals.append(
            _goal(
                f"middleware-{launcher}",
                f"our middleware's cost in req/s under {launcher} (ours against a bare Flask hello)",
                cost,
                "<=",
                0.10,
            )
        )
    goals.append(
        _goal(
            "cold-start",
            "cold start of python main.py in production, against bare gunicorn on a minimal app",
            _ratio(cold_ours, cold_ref),
            "<=",
            1.3,
        )
    )
    goals.append(
        _goal(
            "errors",
            "errors in every run but the rejected tuning alternatives, warm-ups included",
            errors,
            "<=",
            0,
        )
    )
    return {
        "default_vs_seeds": _ratio(_head(default), _head(seeds)),
        "default_p99_vs_seeds": _ratio(_head(default, "p99_ms"), _head(seeds, "p99_ms")),
        "fastest": fastest["name"] if fastest else None,
        "fastest_vs_seeds": _ratio(_head(fastest), _head(seeds)),
        "middleware_cost": middleware,
        "cold_start_vs_minimal_gunicorn": _ratio(cold_ours, cold_ref),
        "errors": errors,
        "tuning_errors": tuning_errors,
        "failures": failures,
        "contended": contended,
        "goals": goals,
    }


def _goal(key: str, text: str, value: float | None, op: str, target: float) -> dict:
    if value is None:
        met = None
    else:
        met = value >= target if op == ">=" else value <= target
    return {"key": key, "text": text, "value": value, "op": op, "target": target, "met": met}


# --- text -------------------------------------------------------------------------------


def _fmt_load(load: dict | None) -> str:
    if not load:
        return "-"
    return f"{load['rps']:,.0f} ({load['p50_ms']:.1f} / {load['p99_ms']:.1f} ms)"


def _rows(results: dict) -> list[list[str]]:
    rows = []
    for c in results["configs"]:
        mem = c["memory_after_warmup"] or {}
        rows.append(
            [
                c["label"],
                *(_fmt_load(c["loads"].get(k)) for k in LOAD_KEYS),
                str(sum(x["errors"] for x in c["loads"].values()) + c["warmup_errors"]),
                f"{c['cold_start_ms']['median']:.0f} ms" if c["cold_start_ms"]["median"] else "-",
                f"{mem['rss_mib_total']:.0f} / {mem['pss_mib_total']:.0f} MiB ({mem['processes']})"
                if mem
                else "-",
                f"{c['cpu_s_per_10k']:.2f}" if c["cpu_s_per_10k"] is not None else "-",
            ]
        )
    return rows


COLUMNS = [
    "configuration",
    "c16 keep-alive",
    "c64 keep-alive",
    "c16 close",
    "c64 close",
    "errors",
    "cold start",
    "RSS / PSS (procs)",
    "CPU s / 10k",
]


def table(results: dict) -> str:
    """A plain table for the terminal: req/s (p50 / p99)."""
    rows = [COLUMNS, *_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "req/s (p50 / p99 latency)\n" + "\n".join(lines)


def markdown_table(results: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in _rows(results):
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def _verdict(goal: dict) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[goal["met"]]


def _value(goal: dict) -> str:
    v = goal["value"]
    if v is None:
        return "-"
    if goal["key"].startswith("middleware"):
        return f"{v * 100:.1f} %"
    if goal["key"] == "errors":
        return str(v)
    return f"{v:.2f}x"


def _target(goal: dict) -> str:
    if goal["key"].startswith("middleware"):
        return f"{goal['op']} {goal['target'] * 100:.0f} %"
    if goal["key"] == "errors":
        return "0"
    return f"{goal['op']} {goal['target']}x"


def goals_text(results: dict) -> str:
    lines = ["goals:"]
    for g in results["summary"]["goals"]:
        lines.append(f"  {_verdict(g).strip('*'):<12} {_value(g):>8}  ({_target(g)})  {g['text']}")
    return "\n".join(lines)


def goals_markdown(results: dict) -> str:
    lines = ["| goal | target | measured | |", "|---|---|---|---|"]
    for g in results["summary"]["goals"]:
        lines.append(f"| {g['text']} | {_target(g)} | {_value(g)} | {_verdict(g)} |")
    return "\n".join(lines)


# --- chart ------------------------------------------------------------------------------

GROUP_COLOURS = {
    "ours": "#1f77b4",
    "baseline": "#7f7f7f",
    "bare": "#9ecae1",
    "ceiling": "#2ca02c",
    "tuning": "#ff7f0e",
}


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loaded = [c for c in results["configs"] if c["loads"].get(HEAD)]
    loaded.sort(key=lambda c: c["loads"][HEAD]["rps"])
    labels = [c["label"] for c in loaded]
    fig, (ax_rps, ax_p99) = plt.subplots(
        1, 2, figsize=(13, 0.42 * len(loaded) + 1.8), sharey=True, width_ratios=(3, 2)
    )
    y = range(len(loaded))
    colours = [GROUP_COLOURS.get(c["group"], "#333333") for c in loaded]
    rps = [c["loads"][HEAD]["rps"] for c in loaded]
    ax_rps.barh(y, rps, color=colours)
    close = [c["loads"].get("c64-close", {}).get("rps") for c in loaded]
    ax_rps.scatter(
        [v for v in close if v],
        [i for i, v in zip(y, close, strict=True) if v],
        marker="|",
        s=160,
        color="black",
        label="c64, Connection: close",
        zorder=3,
    )
    for i, v in zip(y, rps, strict=True):
        ax_rps.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
    ax_rps.set_yticks(list(y), labels, fontsize=9)
    ax_rps.set_xlabel("requests per second, c64 keep-alive (bar)")
    ax_rps.legend(loc="lower right", fontsize=8)
    ax_rps.set_xlim(0, max(rps) * 1.18)
    p99 = [c["loads"][HEAD]["p99_ms"] for c in loaded]
    ax_p99.barh(y, p99, color=colours)
    for i, v in zip(y, p99, strict=True):
        ax_p99.text(v, i, f" {v:.1f}", va="center", fontsize=8)
    ax_p99.set_xscale("log")  # a rejected variant's second-long tail would flatten the rest
    ax_p99.set_xlabel("p99 latency, ms, c64 keep-alive (log scale)")
    ax_p99.set_xlim(min(p99) / 1.5, max(p99) * 3)
    m = results["machine"]
    fig.suptitle(
        f"GET /healthz on {m['usable_cpus']} CPUs ({m['cpu_model']}), wrk on the same machine; "
        f"{results['generated']}",
        fontsize=10,
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in GROUP_COLOURS.values()]
    fig.legend(handles, list(GROUP_COLOURS), loc="lower center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- docs/performance.md --------------------------------------------------------------------


def performance_page(results: dict, png: Path, page: Path) -> str:
    from bench.prose import page_text

    chart_link = os.path.relpath(png.resolve(), page.resolve().parent)
    return page_text(results, chart_link)
