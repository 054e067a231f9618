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
    slots = target_slots(results, target)
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
        lines += chart_lines(results, path, f"{scenario} connections", CONNECTIONS_CAPTION)
    return lines
