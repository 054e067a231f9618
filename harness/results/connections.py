"""Long-lived connections (SSE and WebSocket scenarios): which cells, their medians, "held".

A scenario's connection cells are its ok cells whose protocol is "sse" or "ws" and that
requested connections; their figures (connections established, server memory per connection,
message latency and rate) are compared against connections requested. A level is *held* when
every requested connection was established and message p99 stayed under MESSAGE_P99_LIMIT_MS.
The chart is ``harness.charts.connections``'s, the words ``harness.report.connections``'.
"""

from __future__ import annotations

import pandas as pd

from harness.results.folder import Results
from harness.results.rows import ok_only

CONNECTION_PROTOCOLS = ("sse", "ws")
MESSAGE_P99_LIMIT_MS = 100.0
X = "connections_requested"
FIGURES = [
    "connections_established",
    "rss_per_connection_kb",
    "message_p50_ms",
    "message_p99_ms",
    "messages_per_s",
]


def connection_rows(results: Results, scenario: str) -> pd.DataFrame:
    """The ok SSE/WebSocket cells of a scenario that requested connections."""
    rows = ok_only(results.scenario_rows(scenario))
    rows = rows[rows["protocol"].isin(CONNECTION_PROTOCOLS).fillna(False)]
    return rows[rows[X].notna()]


def connection_medians(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, connections requested): the median across trials."""
    frame = rows[["target", X, *FIGURES]].copy()
    for column in [X, *FIGURES]:
        frame[column] = frame[column].astype("float64")
    grouped = frame.groupby(["target", X], as_index=False)[FIGURES].median()
    return grouped.sort_values(["target", X]).reset_index(drop=True)


def target_slots(results: Results, target: str) -> int | None:
    """How many connections the target can serve at once (None: unbounded, an event loop)."""
    slots = (results.targets.get(target) or {}).get("slots")
    return None if slots is None else int(slots)


def was_held(row: pd.Series) -> bool:
    """Whether a median row held its connections: all established, message p99 in the limit."""
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
