"""The "Real I/O" section of report.md: scenarios that wait on a real database or upstream.

Only when the run has such scenarios (``harness.results.real_io``): what they measure (a real
query through a connection pool, a real HTTP call through a client pool), why the pool is in the
bound, then per scenario a short table at its common load level (target, total pool, requests/s,
p99, the bound and what set it in words, the database's or upstream's CPU), and the chart.
"""

from __future__ import annotations

from typing import Any

from harness.charts.paths import REAL_IO_CAPTION, real_io_chart_path
from harness.format import fmt, fmt_exact, fmt_ms, load_text
from harness.report.blocks import chart_lines, table
from harness.results.folder import Results
from harness.results.real_io import (
    NEEDS_TEXT,
    RealIoScenario,
    common_level,
    level_medians,
    real_io_scenarios,
)

INTRO = (
    "These scenarios do what real services do instead of sleeping: each request waits on a "
    "PostgreSQL server or an upstream HTTP service that the harness starts, through a driver "
    "and a connection pool sized per server process (`--set TARGET.pool=N`). A request holds a "
    "pooled connection for its service time S, so a target cannot serve more than "
    "min(slots, pool) / S requests/s, whatever its interface: an event loop with a "
    "10-connection pool is capped at 10 / S like a 10-thread WSGI server. The database runs "
    "on the server's CPUs, so its CPU shares the server's budget: the bound says *the "
    "database's CPU* when it used more of it than the server. *pool* is the total over the "
    "server's processes (workers × pool); the upstream service has CPUs of its own."
)
SERVICE_COLUMN = {"database": "database CPU %", "upstream": "upstream CPU %"}
SERVICE_FIGURE = {"database": "database_cpu_pct", "upstream": "upstream_cpu_pct"}


def _services_lines(results: Results) -> list[str]:
    """The services as the manifest records them (``services``): PostgreSQL's version and
    settings, or why a service was unavailable."""
    services: Any = dict(results.manifest).get("services")
    if not isinstance(services, dict):
        return []
    lines = []
    for name, info in sorted(services.items()):
        if not isinstance(info, dict):
            continue
        if info.get("unavailable"):
            lines.append(f"- The {name} was unavailable: {info['unavailable']}.")
        elif name == "database" and info.get("version"):
            text = f"- PostgreSQL {info['version']}"
            if info.get("rows"):
                text += f", {int(info['rows']):,} rows seeded"
            settings = info.get("settings")
            if isinstance(settings, dict) and settings:
                text += "; settings: " + ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
            lines.append(text + ".")
    return [*lines, ""] if lines else []


def _scenario_lines(scenario: RealIoScenario) -> list[str]:
    level = common_level(scenario)
    if level is None:
        return []
    medians = level_medians(scenario, level)
    service = scenario.needs
    header = ["target", "pool", "rps", "p99 ms", "bound rps", "limited by"]
    header += [SERVICE_COLUMN[service], "server CPU %"]
    body = [
        [
            str(row["target"]),
            fmt(row["pool_total"], 0),
            fmt(row["rps"]),
            fmt_ms(row["p99_ms"]),
            fmt_exact(row["bound_rps"]),
            str(row["limited_by"] if isinstance(row["limited_by"], str) else "–"),
            fmt(row[SERVICE_FIGURE[service]]),
            fmt(row["server_cpu_pct"]),
        ]
        for _, row in medians.iterrows()
    ]
    where = load_text(scenario.axis.model, level)
    return [
        f"### `{scenario.name}`: {NEEDS_TEXT[service]}, at {where}",
        "",
        *table(header, body),
        "",
    ]


def real_io_section(results: Results) -> list[str]:
    """ "Real I/O": what the scenarios measure, a table per scenario, the chart; [] without."""
    scenarios = real_io_scenarios(results)
    if not scenarios:
        return []
    lines = ["## Real I/O", "", INTRO, "", *_services_lines(results)]
    for scenario in scenarios:
        lines += _scenario_lines(scenario)
    path = real_io_chart_path(results.run_dir)
    lines += chart_lines(results, path, "real I/O throughput", REAL_IO_CAPTION)
    return lines
