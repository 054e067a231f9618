"""The real-I/O chart: throughput through a connection pool against load, per target.

``real_io_chart`` draws ``real_io.png`` with one panel per scenario that needs a database or an
upstream service (``harness.results.real_io``): requests/s against the load (concurrent users;
the offered rate for a scenario with only open-load cells), one line per target in its run
colour, and behind it the target's bound (the lowest ceiling of its roofline: for these cells
min(server slots, pool_total) / S, or a CPU) as the throughput chart draws it, a wide pale line
in the same colour. The legend names each target's total pool. A wide spread of throughputs
(a blocked loop near 1 / S beside a pool of 100) gets a log axis.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.charts import common
from harness.charts.common import BOUND_LABEL, BOUND_STYLE, Colour
from harness.results.folder import Results
from harness.results.real_io import RealIoScenario, real_io_scenarios
from harness.results.rows import ok_only

PANEL_SIZE = (7.5, 5.5)
PANELS_PER_ROW = 3
NEEDS_WORDS = {"database": "a real database", "upstream": "a real upstream service"}
# What held the bound at the highest load, written at the end of the target's bound line.
LIMITER_WORDS = {
    "pool": "pool",
    "slots": "slots",
    "balance": "balance",
    "users": "users",
    "rate": "offered rate",
    "server_cpu": "server CPU",
    "database": "database CPU",
    "generator": "generator CPU",
    "unexplained": "unexplained",
}


def _pool_text(rows: pd.DataFrame) -> str:
    pools = rows["pool_total"].dropna().astype("float64")
    return f" (pool {pools.max():g})" if len(pools) else ""


def _label_bound(ax: plt.Axes, rows: pd.DataFrame, x: str, colour: Colour) -> None:
    """The limiter of the highest load level, above the end of the target's bound line."""
    known = ok_only(rows).dropna(subset=[x, "bound_rps"])
    if known.empty:
        return
    last = known.sort_values(x).iloc[-1]
    words = LIMITER_WORDS.get(str(last["limiter"]), str(last["limiter"]))
    ax.annotate(
        words,
        (float(last[x]), float(last["bound_rps"])),
        xytext=(-6, 6),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color=colour,
    )


def _panel(
    ax: plt.Axes, results: Results, scenario: RealIoScenario, colours: dict[str, Colour]
) -> None:
    rows, x = scenario.rows, scenario.axis.column
    ok = ok_only(rows)
    handles: list[Line2D] = []
    for target, group in rows.groupby("target", sort=True):
        colour = colours[str(target)]
        common.plot_series(ax, group, x, "bound_rps", colour, **BOUND_STYLE)
        common.plot_series(ax, ok[ok["target"] == target], x, "rps", colour, marker="o", zorder=2)
        _label_bound(ax, group, x, colour)
        label = f"{target}{_pool_text(group)}"
        handles.append(Line2D([], [], color=colour, marker="o", label=label))
    common.mark_cells(ax, rows, x, "rps", colours)
    common.style_load_axis(ax, rows[x], scenario.axis.label, "throughput (requests/s)")
    values = pd.concat([ok["rps"], ok["bound_rps"]])
    if common.log_if_wide(ax, values):
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * 1.3)  # room for the limiter written above the highest bound
    else:
        ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    label = f"{BOUND_LABEL}; its limiter at the end"
    bound = Line2D([], [], color="grey", label=label, **BOUND_STYLE)  # type: ignore[arg-type]
    handles += [bound, *common.mark_handles(rows)]
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    load = scenario.axis.label.split(" (")[0]
    what = f"requests/s vs {load}, through {NEEDS_WORDS.get(scenario.needs, scenario.needs)}"
    ax.set_title(common.title(results, scenario.name, what), fontsize=common.TITLE_SIZE)


def real_io_chart(results: Results, colours: dict[str, Colour], path: Path) -> Path | None:
    """One panel per real-I/O scenario with ok cells; None when the run has none."""
    scenarios = real_io_scenarios(results)
    if not scenarios:
        return None
    columns = min(len(scenarios), PANELS_PER_ROW)
    lines = -(-len(scenarios) // columns)
    fig, axes = plt.subplots(
        lines,
        columns,
        figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * lines + 0.4),
        squeeze=False,
    )
    for ax, scenario in zip(axes.flat, scenarios, strict=False):
        _panel(ax, results, scenario, colours)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Real I/O: throughput through each target's connection pool, against its bound "
        "min(slots, pool) / S or a CPU",
        fontsize=common.TITLE_SIZE + 1,
    )
    fig.tight_layout()
    return common.save(fig, path)
