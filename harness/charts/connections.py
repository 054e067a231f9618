"""Long-lived connections (SSE and WebSocket scenarios): their chart and their report section.

For every scenario with ok cells whose protocol is "sse" or "ws", ``connections_chart`` draws
``<scenario>_connections.png`` with three panels against connections requested, each target in
its run colour: connections established (a dashed y=x line where every connection was held),
server memory per connection, and message latency (p50 solid, p99 dashed, log y).
``connections_section`` writes the "Long-lived connections" table and one sentence per target:
the most connections it held with every one established and message p99 under
MESSAGE_P99_LIMIT_MS. Everything is read through ``harness.results.folder`` only.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter

from harness import schema
from harness.charts import common
from harness.charts.common import Colour
from harness.results.folder import Results

CONNECTION_PROTOCOLS = ("sse", "ws")
MESSAGE_P99_LIMIT_MS = 100.0
CONNECTIONS_CAPTION = (
    "How many long-lived connections each stack held, what each cost in memory, and how fast "
    "messages still arrived"
)
X = "connections_requested"
FIGURES = [
    "connections_established",
    "rss_per_connection_kb",
    "message_p50_ms",
    "message_p99_ms",
    "messages_per_s",
]


def connections_chart_path(run_dir: Path | str, scenario: str) -> Path:
    """Where the long-lived connections chart of a scenario goes."""
    return Path(run_dir) / schema.CHARTS_DIR / f"{scenario}_connections.png"


def connection_rows(results: Results, scenario: str) -> pd.DataFrame:
    """The ok SSE/WebSocket cells of a scenario that requested connections."""
    summary = results.summary
    rows = common.ok_only(summary[summary["scenario"].eq(scenario).fillna(False)])
    rows = rows[rows["protocol"].isin(CONNECTION_PROTOCOLS).fillna(False)]
    return rows[rows[X].notna()]


def connection_medians(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, connections requested): the median across trials."""
    frame = rows[["target", X, *FIGURES]].copy()
    for column in [X, *FIGURES]:
        frame[column] = frame[column].astype("float64")
    grouped = frame.groupby(["target", X], as_index=False)[FIGURES].median()
    return grouped.sort_values(["target", X]).reset_index(drop=True)


def connections_chart(results: Results, scenario: str, colours: dict[str, Colour]) -> Path | None:
    """The three-panel chart of a scenario's long-lived connections; None when it has none."""
    rows = connection_rows(results, scenario)
    if rows.empty:
        return None
    fig, (held, memory, latency) = plt.subplots(1, 3, figsize=(15.0, 5.0))
    for target, group in rows.groupby("target", sort=True):
        colour = colours[str(target)]
        common.plot_series(held, group, X, "connections_established", colour, marker="o")
        common.plot_series(memory, group, X, "rss_per_connection_kb", colour, marker="o")
        common.plot_series(latency, group, X, "message_p50_ms", colour, marker="o", linestyle="-")
        common.plot_series(latency, group, X, "message_p99_ms", colour, marker="^", linestyle="--")
    requested = rows[X].astype("float64")
    low, high = float(requested.min()), float(requested.max())
    held.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1.2, zorder=3)
    axis = common.LoadAxis(X, "connections requested", "", "connections")
    panels = [
        (held, "connections established", "connections held"),
        (memory, "server memory per connection (kB)", "memory per connection"),
        (latency, "message latency (ms)", "message latency"),
    ]
    for ax, ylabel, name in panels:
        common.style_load_axis(ax, rows[X], axis, ylabel)
        ax.set_title(name, fontsize=common.TITLE_SIZE)
    held.set_ylim(bottom=0)
    per_connection = rows["rss_per_connection_kb"].astype("float64").dropna()
    per_connection = per_connection[per_connection > 0]
    if len(per_connection) and per_connection.max() / per_connection.min() > 20:
        # A target holding a handful of connections divides its memory by few: log scale.
        memory.set_yscale("log")
        memory.yaxis.set_major_formatter(common.number_formatter())
    else:
        memory.set_ylim(bottom=0)
    positive = pd.concat([rows["message_p50_ms"], rows["message_p99_ms"]]).astype("float64")
    if (positive.dropna() > 0).any():
        latency.set_yscale("log")
        latency.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        latency.yaxis.set_major_formatter(common.number_formatter())
        latency.yaxis.set_minor_formatter(NullFormatter())
    if low == high:
        for ax in (held, memory, latency):
            ax.set_xlim(low * 0.5, high * 1.5)
    names = sorted(rows["target"].astype(str).unique())
    targets = common.target_handles(names, colours)
    line = Line2D([], [], color="grey", linestyle="--", label="every connection held")
    held.legend(handles=[*targets, line], fontsize=8, loc="best", framealpha=0.9)
    memory.legend(handles=targets, fontsize=8, loc="best", framealpha=0.9)
    styles = [
        Line2D([], [], color="grey", marker="o", linestyle="-", label="p50 (median)"),
        Line2D([], [], color="grey", marker="^", linestyle="--", label="p99"),
    ]
    latency.legend(handles=[*targets, *styles], fontsize=8, loc="best", framealpha=0.9)
    what = "long-lived connections held, memory and message latency vs connections requested"
    fig.suptitle(common.title(results, scenario, what), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, connections_chart_path(results.run_dir, scenario))


def draw_connection_charts(results: Results, colours: dict[str, Colour]) -> list[Path]:
    """The connections chart of every scenario that has long-lived connection cells."""
    drawn = [connections_chart(results, s, colours) for s in results.scenario_names]
    return [path for path in drawn if path is not None]


def _slots(results: Results, target: str) -> int | None:
    slots = (results.targets.get(target) or {}).get("slots")
    return None if slots is None else int(slots)


def _held(row: pd.Series) -> bool:
    established, requested, p99 = (
        row["connections_established"],
        row[X],
        row["message_p99_ms"],
    )
    return bool(
        pd.notna(established)
        and established >= requested
        and pd.notna(p99)
        and p99 < MESSAGE_P99_LIMIT_MS
    )


def target_sentence(results: Results, target: str, medians: pd.DataFrame) -> str:
    """What one target held, in words (``medians``: its rows of ``connection_medians``)."""
    from harness.report.sections import fmt, fmt_ms

    def count(value: object) -> str:
        return fmt(value, 0)

    held = medians[medians.apply(_held, axis=1)] if len(medians) else medians
    top = medians.sort_values(X).iloc[-1]
    if len(held):
        best = held.sort_values(X).iloc[-1]
        text = (
            f"{target} held {count(best['connections_established'])} of {count(best[X])} "
            f"connections (message p99 {fmt_ms(best['message_p99_ms'])} ms, "
            f"{count(best['rss_per_connection_kb'])} kB per connection)"
        )
        if top[X] > best[X]:
            text += f"; at {count(top[X])} it held {count(top['connections_established'])}"
            if pd.notna(top["message_p99_ms"]) and top["message_p99_ms"] >= MESSAGE_P99_LIMIT_MS:
                text += f" with message p99 {fmt_ms(top['message_p99_ms'])} ms"
        return text
    text = f"{target} held {count(top['connections_established'])} of {count(top[X])}"
    slots = _slots(results, target)
    if slots is not None and top["connections_established"] == slots:
        return text + f": its {slots} slots — the other connections waited in the accept queue"
    if pd.notna(top["message_p99_ms"]) and top["message_p99_ms"] >= MESSAGE_P99_LIMIT_MS:
        return (
            text + f" connections, but message p99 was {fmt_ms(top['message_p99_ms'])} ms "
            f"(limit {MESSAGE_P99_LIMIT_MS:g} ms)"
        )
    return text + " connections"


def connections_section(results: Results) -> list[str]:
    """ "Long-lived connections" of every SSE/WebSocket scenario: table, sentences, chart."""
    from harness.report.sections import fmt, fmt_ms, table

    lines: list[str] = []
    for scenario in results.scenario_names:
        rows = connection_rows(results, scenario)
        if rows.empty:
            continue
        medians = connection_medians(rows)
        header = ["target", "requested", "established", "RSS per connection kB"]
        header += ["message p50 ms", "message p99 ms", "messages/s"]
        body = [
            [
                str(row["target"]),
                fmt(row[X], 0),
                fmt(row["connections_established"], 0),
                fmt(row["rss_per_connection_kb"]),
                fmt_ms(row["message_p50_ms"]),
                fmt_ms(row["message_p99_ms"]),
                fmt(row["messages_per_s"]),
            ]
            for _, row in medians.iterrows()
        ]
        sentences = [
            target_sentence(results, str(target), group)
            for target, group in medians.groupby("target", sort=True)
        ]
        lines += [f"## Long-lived connections: `{scenario}`", "", *table(header, body), ""]
        lines += [
            f"Held: every requested connection established and message p99 under "
            f"{MESSAGE_P99_LIMIT_MS:g} ms. " + "; ".join(sentences) + ".",
            "",
        ]
        path = connections_chart_path(results.run_dir, scenario)
        if path.is_file():
            rel = path.relative_to(results.run_dir).as_posix()
            alt = f"{scenario} connections"
            lines += [f"![{alt}]({rel})", "", f"*{CONNECTIONS_CAPTION}*", ""]
    return lines
