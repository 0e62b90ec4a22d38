"""The comparison's outputs: raw and summarised JSON, a markdown page, a PNG chart.

Every figure is the median of the rounds with its min-max; its ratio to Node BullMQ is taken
within each round (same machine state) and the median of those ratios is shown.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from textwrap import fill
from typing import Any

NODE = "bullmq (Node)"
Samples = dict[str, dict[str, list[dict[str, float]]]]
"""workload -> system -> one result (metric -> value) per round."""

# metric -> (label, higher is better)
METRICS = {
    "jobs_per_s": ("jobs/s", True),
    "jobs_per_s_before_rows": ("jobs/s, BullMQ done before rows landed", True),
    "cpu_us_per_job": ("worker CPU µs/job", False),
    "redis_cpu_us_per_job": ("Redis CPU µs/job", False),
    "wall_s": ("wall s", False),
    "x_bound": ("x bound", False),
    "p50_ms": ("p50 ms", False),
    "p99_ms": ("p99 ms", False),
    "max_ms": ("max ms", False),
    "audit_lag_p50_ms": ("audit lag p50 ms", False),
    "audit_lag_p99_ms": ("audit lag p99 ms", False),
    "idle_rss_mb": ("MB", False),
}
CHART = [  # (workload, metric) shown in the PNG
    ("drain 1x1", "jobs_per_s"),
    ("drain 1x50", "jobs_per_s"),
    ("drain 2x50", "jobs_per_s"),
    ("50 ms jobs at 2x50", "wall_s"),
    ("latency at 100 jobs/s", "p50_ms"),
    ("latency at 100 jobs/s", "p99_ms"),
    ("sparse arrivals", "max_ms"),
    ("delayed job lateness", "p99_ms"),
    ("enqueue one by one", "jobs_per_s"),
    ("enqueue bulk", "jobs_per_s"),
    ("idle RSS per worker process", "idle_rss_mb"),
]

HEADLINE = [
    *CHART,
    ("latency at 100 jobs/s", "audit_lag_p50_ms"),
    ("latency at 100 jobs/s", "audit_lag_p99_ms"),
]


@dataclass(frozen=True)
class Target:
    text: str
    workload: str
    system: str
    metric: str
    met: Callable[[float], bool]
    ratio: bool = False  # compare the x Node ratio, not the figure


PG, OFF = "quickdapp (audit PG)", "quickdapp (no audit)"
DRAIN_2, DRAIN_1, SLEEP = "drain 2x50", "drain 1x50", "50 ms jobs at 2x50"
STEADY, SPARSE, DELAYED = "latency at 100 jobs/s", "sparse arrivals", "delayed job lateness"
TARGETS = [
    Target(
        "drain 2x50, audit on PostgreSQL >= 1.5x Node",
        DRAIN_2,
        PG,
        "jobs_per_s",
        lambda x: x >= 1.5,
        True,
    ),
    Target("drain 2x50, audit off >= 1.8x Node", DRAIN_2, OFF, "jobs_per_s", lambda x: x >= 1.8, True),
    Target("drain 1x50, audit off >= 1.3x Node", DRAIN_1, OFF, "jobs_per_s", lambda x: x >= 1.3, True),
    Target(
        "2,000 x 50 ms at 2x50 (audit PG): wall <= 1.03x jobs*0.05/(P*C)",
        SLEEP,
        PG,
        "x_bound",
        lambda x: x <= 1.03,
    ),
    Target("add -> start p50 <= 1 ms at 100 jobs/s (audit PG)", STEADY, PG, "p50_ms", lambda x: x <= 1),
    Target("add -> start p99 <= 2 ms at 100 jobs/s (audit PG)", STEADY, PG, "p99_ms", lambda x: x <= 2),
    Target(
        "sparse arrivals, a delayed job pending: every job <= 10 ms (audit PG)",
        SPARSE,
        PG,
        "max_ms",
        lambda x: x <= 10,
    ),
    Target(
        "delayed job starts <= 20 ms after due, p99 (audit PG, default hz)",
        DELAYED,
        PG,
        "p99_ms",
        lambda x: x <= 20,
    ),
    Target(
        "enqueue one by one >= 1.0x Node", "enqueue one by one", PG, "jobs_per_s", lambda x: x >= 1, True
    ),
    Target("enqueue bulk >= 1.0x Node", "enqueue bulk", PG, "jobs_per_s", lambda x: x >= 1, True),
    Target(
        "idle worker process <= 60 MB RSS (audit PG)",
        "idle RSS per worker process",
        PG,
        "idle_rss_mb",
        lambda x: x <= 60,
    ),
]


def summarise(samples: Samples) -> dict[str, Any]:
    """workload -> system -> metric -> {median, min, max, runs, x_node}."""
    table: dict[str, Any] = {}
    for workload, systems in samples.items():
        node_runs = systems.get(NODE, [])
        for system, runs in systems.items():
            for metric in sorted({m for run in runs for m in run}, key=list(METRICS).index):
                values = [run[metric] for run in runs if metric in run]
                ratios = [
                    run[metric] / node[metric]
                    for run, node in zip(runs, node_runs, strict=False)
                    if metric in run and node.get(metric)
                ]
                table.setdefault(workload, {}).setdefault(system, {})[metric] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "runs": len(values),
                    "x_node": statistics.median(ratios) if ratios else None,
                }
    return table


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "-"
    cell = f"**{_number(stats['median'])}** ({_number(stats['min'])}-{_number(stats['max'])})"
    if stats["x_node"] is not None:
        cell += f" {stats['x_node']:.2f}x"
    return cell


def targets(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure measured and whether it was met."""
    rows = []
    for target in TARGETS:
        stats = table.get(target.workload, {}).get(target.system, {}).get(target.metric)
        value = None if stats is None else stats["x_node"] if target.ratio else stats["median"]
        shown = "-" if value is None else f"{value:.2f}x Node" if target.ratio else _number(value)
        rows.append(
            {
                "target": target.text,
                "measured": shown,
                "met": None if value is None else target.met(value),
            }
        )
    return rows


def headline(table: dict[str, Any], systems: list[str]) -> list[str]:
    """The charted figures, one row each: median and its ratio to Node per system."""
    lines = ["| workload | " + " | ".join(systems) + " |", "|---|" + "---|" * len(systems)]
    for workload, metric in HEADLINE:
        if workload not in table:
            continue
        label, higher = METRICS[metric]
        cells = []
        for system in systems:
            stats = table[workload].get(system, {}).get(metric)
            ratio = "" if stats is None or stats["x_node"] is None else f" ({stats['x_node']:.2f}x)"
            cells.append("-" if stats is None else _number(stats["median"]) + ratio)
        lines.append(f"| {workload}, {label} {'↑' if higher else '↓'} | " + " | ".join(cells) + " |")
    return lines


def markdown(table: dict[str, Any], header: list[str], systems: list[str], notes: list[str]) -> str:
    lines = [*header, "", "## Targets", "", "| target | measured (median) | |", "|---|---|---|"]
    for row in targets(table):
        verdict = "-" if row["met"] is None else "met" if row["met"] else "**missed**"
        lines.append(f"| {row['target']} | {row['measured']} | {verdict} |")
    lines += ["", "## Headline", "", "Medians, (x Node BullMQ); ↑ higher is better, ↓ lower.", ""]
    lines += headline(table, systems)
    lines += ["", "## All figures", ""]
    lines.append(
        "Median of the runs **in bold**, (min-max), then the median of the per-run ratios to Node."
    )
    lines += ["", "| workload | metric | " + " | ".join(systems) + " |"]
    lines.append("|---|---|" + "---|" * len(systems))
    for workload, by_system in table.items():
        metrics = [m for m in METRICS if any(m in stats for stats in by_system.values())]
        for metric in metrics:
            label, higher = METRICS[metric]
            label += " (higher is better)" if higher else ""
            cells = [_cell(by_system.get(system, {}).get(metric)) for system in systems]
            lines.append(f"| {workload} | {label} | " + " | ".join(cells) + " |")
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def chart(table: dict[str, Any], systems: list[str], path: Path) -> None:
    """Grouped bars: each system's ratio to Node BullMQ per workload, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(w, m) for w, m in CHART if w in table]
    others = [s for s in systems if s != NODE]
    fig, ax = plt.subplots(figsize=(14, 6))
    width = 0.8 / max(1, len(others))
    for i, system in enumerate(others):
        ratios = []
        for workload, metric in shown:
            stats = table[workload].get(system, {}).get(metric)
            ratios.append(stats["x_node"] if stats and stats["x_node"] else float("nan"))
        ax.bar([x + i * width for x in range(len(shown))], ratios, width, label=system)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("x Node BullMQ (median of per-run ratios, log)")
    ax.set_xticks([x + width * (len(others) - 1) / 2 for x in range(len(shown))])
    labels = [f"{fill(w, 16)}\n{METRICS[m][0]}{' ↑' if METRICS[m][1] else ' ↓'}" for w, m in shown]
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_title("Each system against Node BullMQ (= 1): ↑ higher is better, ↓ lower is better")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    samples: Samples,
    meta: dict[str, Any],
    systems: list[str],
    notes: list[str],
    *,
    results: Path,
    docs: Path,
) -> dict[str, Any]:
    """bench.json (meta, raw samples, summary, targets), benchmark.md and benchmark.png."""
    table = summarise(samples)
    results.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    document = {**meta, "samples": samples, "summary": table, "targets": targets(table)}
    (results / "bench.json").write_text(json.dumps(document, indent=1) + "\n")
    header = ["# Benchmark: this system beside its peers", "", *meta["header"]]
    (docs / "benchmark.md").write_text(markdown(table, header, systems, notes))
    chart(table, systems, docs / "benchmark.png")
    return table
