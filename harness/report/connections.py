"""The "Long-lived connections" sections of report.md: per SSE/WebSocket scenario, its table.

For every scenario with connection cells (``harness.results.connections``): the medians per
target and connections requested, one sentence per target (the most connections it held, with
message p99 and memory per connection, or why it held fewer), and the chart.
"""

from __future__ import annotations

import pandas as pd

from harness.charts.paths import CONNECTIONS_CAPTION, connections_chart_path
from harness.format import fmt, fmt_ms
from harness.report.blocks import chart_lines, table
from harness.results.connections import (
    HELD,
    MEMORY,
    MESSAGE_P99_LIMIT_MS,
    X,
    connection_medians,
    connection_rows,
    target_slots,
    was_held,
)
from harness.results.folder import Results


def target_sentence(results: Results, target: str, medians: pd.DataFrame) -> str:
    """What one target held, in words (``medians``: its rows of ``connection_medians``)."""

    def count(value: object) -> str:
        return fmt(value, 0)

    held = medians[medians.apply(was_held, axis=1)] if len(medians) else medians
    top = medians.sort_values(X).iloc[-1]
    if len(held):
        best = held.sort_values(X).iloc[-1]
        text = (
            f"{target} held {count(best[HELD])} of {count(best[X])} "
            f"connections (message p99 {fmt_ms(best['message_p99_ms'])} ms, "
            f"{count(best[MEMORY])} kB per connection)"
        )
        if top[X] > best[X]:
            text += f"; at {count(top[X])} it held {count(top[HELD])}"
            if pd.notna(top["message_p99_ms"]) and top["message_p99_ms"] >= MESSAGE_P99_LIMIT_MS:
                text += f" with message p99 {fmt_ms(top['message_p99_ms'])} ms"
        return text
    text = f"{target} held {count(top[HELD])} of {count(top[X])}"
    slots = target_slots(results, target)
    if slots is not None and top[HELD] == slots:
        return text + f": its {slots} slots — the other connections waited in the accept queue"
    if pd.notna(top["message_p99_ms"]) and top["message_p99_ms"] >= MESSAGE_P99_LIMIT_MS:
        return (
            text + f" connections, but message p99 was {fmt_ms(top['message_p99_ms'])} ms "
            f"(limit {MESSAGE_P99_LIMIT_MS:g} ms)"
        )
    return text + " connections"


def connection_headline(results: Results, scenario: str) -> list[str]:
    """The finding of an SSE/WebSocket scenario, at the most connections every target was
    asked for: targets ranked by connections held, then by message p99 (never by the request
    latency of the few connections a target held)."""
    rows = connection_rows(results, scenario)
    if rows.empty:
        return []
    medians = connection_medians(rows)
    common = medians.groupby(X)["target"].nunique()
    level = float(common[common == common.max()].index.max())
    at = medians[medians[X] == level].copy()
    at["_p99"] = at["message_p99_ms"].fillna(float("inf"))
    at = at.sort_values([HELD, "_p99"], ascending=[False, True])
    parts = []
    for _, row in at.iterrows():
        text = f"{row['target']} held {fmt(row[HELD], 0)}"
        if pd.notna(row["message_p99_ms"]):
            text += f" (message p99 {fmt_ms(row['message_p99_ms'])} ms"
            text += f", {fmt(row[MEMORY])} kB each)" if pd.notna(row[MEMORY]) else ")"
        parts.append(text)
    return [
        f"At {fmt(level, 0)} connections requested on **{scenario}**: " + "; ".join(parts) + "."
    ]


def connections_section(results: Results) -> list[str]:
    """ "Long-lived connections" of every SSE/WebSocket scenario: table, sentences, chart."""
    lines: list[str] = []
    for scenario in results.scenario_names:
        rows = connection_rows(results, scenario)
        if rows.empty:
            continue
        medians = connection_medians(rows)
        header = ["target", "requested", "held", "memory per connection kB (PSS)"]
        header += ["connect p99 ms", "message p50 ms", "message p99 ms", "messages/s"]
        body = [
            [
                str(row["target"]),
                fmt(row[X], 0),
                fmt(row[HELD], 0),
                fmt(row[MEMORY]),
                fmt_ms(row["connect_p99_ms"]),
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
        lines += chart_lines(results, path, f"{scenario} connections", CONNECTIONS_CAPTION)
    return lines
