"""Long-lived connections (SSE and WebSocket scenarios): which cells, their medians, "held".

A scenario's connection cells are its ok cells whose protocol is "sse" or "ws" and that
requested connections; their figures (connections held when the window closed, server memory
per connection from PSS, connect and message latency, message rate) are compared against
connections requested. A level is *held* when every requested connection was held and message
p99 stayed under MESSAGE_P99_LIMIT_MS. Runs from before these columns fall back to connections
established over the cell and RSS per connection.
The chart is ``harness.charts.connections``'s, the words ``harness.report.connections``'.
"""

from __future__ import annotations

import pandas as pd

from harness.results.folder import Results
from harness.results.rows import ok_only

CONNECTION_PROTOCOLS = ("sse", "ws")
MESSAGE_P99_LIMIT_MS = 100.0
X = "connections_requested"
HELD = "held"  # connections_held, else connections_established (older runs)
MEMORY = "memory_per_connection_kb"  # pss_per_connection_kb, else rss_per_connection_kb
FIGURES = [
    HELD,
    MEMORY,
    "connect_p99_ms",
    "message_p50_ms",
    "message_p99_ms",
    "messages_per_s",
]


def connection_rows(results: Results, scenario: str) -> pd.DataFrame:
    """The ok SSE/WebSocket cells of a scenario that requested connections."""
    rows = ok_only(results.scenario_rows(scenario))
    rows = rows[rows["protocol"].isin(CONNECTION_PROTOCOLS).fillna(False)]
    rows = rows[rows[X].notna()].copy()
    rows[HELD] = (
        rows["connections_held"]
        .astype("Float64")
        .fillna(rows["connections_established"].astype("Float64"))
    )
    rows[MEMORY] = rows["pss_per_connection_kb"].fillna(rows["rss_per_connection_kb"])
    return rows


def is_connection_scenario(results: Results, scenario: str) -> bool:
    """Whether the scenario's cells hold long-lived connections (SSE/WebSocket)."""
    return not connection_rows(results, scenario).empty


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
    """Whether a median row held its connections: all held, message p99 in the limit."""
    established, requested, p99 = (
        row[HELD],
        row[X],
        row["message_p99_ms"],
    )
    return bool(
        pd.notna(established)
        and established >= requested
        and pd.notna(p99)
        and p99 < MESSAGE_P99_LIMIT_MS
    )
