"""The chart of long-lived connections (SSE and WebSocket scenarios).

For every scenario with connection cells (``harness.results.connections``),
``connections_chart`` draws ``<scenario>_connections.png`` with three panels against
connections requested, each target in its run colour: connections held when the window closed
(a dashed y=x line where every connection was held), server memory per connection (PSS: pages
shared by forked workers split between them), and message latency (p50 solid, p99 dashed, log
y).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter

from harness.charts import common
from harness.charts.common import Colour
from harness.charts.paths import connections_chart_path
from harness.results.connections import HELD, MEMORY, X, connection_rows
from harness.results.folder import Results


def connections_chart(results: Results, scenario: str, colours: dict[str, Colour]) -> Path | None:
    """The three-panel chart of a scenario's long-lived connections; None when it has none."""
    rows = connection_rows(results, scenario)
    if rows.empty:
        return None
    fig, (held, memory, latency) = plt.subplots(1, 3, figsize=(15.0, 5.0))
    for target, group in rows.groupby("target", sort=True):
        colour = colours[str(target)]
        common.plot_series(held, group, X, HELD, colour, marker="o")
        common.plot_series(memory, group, X, MEMORY, colour, marker="o")
        common.plot_series(latency, group, X, "message_p50_ms", colour, marker="o", linestyle="-")
        common.plot_series(latency, group, X, "message_p99_ms", colour, marker="^", linestyle="--")
    requested = rows[X].astype("float64")
    low, high = float(requested.min()), float(requested.max())
    held.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1.2, zorder=3)
    panels = [
        (held, "connections held at the window's end", "connections held"),
        (memory, "server memory per connection (kB, PSS)", "memory per connection"),
        (latency, "message latency (ms)", "message latency"),
    ]
    for ax, ylabel, name in panels:
        common.style_load_axis(ax, rows[X], "connections requested", ylabel)
        ax.set_title(name, fontsize=common.TITLE_SIZE)
    held.set_ylim(bottom=0)
    per_connection = rows[MEMORY].astype("float64").dropna()
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
