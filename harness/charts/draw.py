"""The charts of a run as PNG files in ``RUN/charts/``: their names, captions and drawing order.

This module owns the chart files and draws the two charts against load of every scenario and
load model: throughput (with the Little's-law bound dashed in the target's colour) and latency
(p50 solid, p99 dashed, p99.9 dotted; open load adds p99 from the actual send, dash-dotted,
beside the figures from the intended start). ``harness.charts.detail`` draws the knee, the
latency distribution, throughput over time and resources; ``harness.charts.overview`` the
ASGI/WSGI ratio across scenarios; ``harness.results.factors`` what each single change of stack does
(``<scenario>_factors.png``, when two targets differ in one thing only). A scenario with stalled
cells also gets ``<scenario>_stall.png``. Shared marks, colours and saving live in
``harness.charts.common``. Everything is read through ``harness.results.folder`` only.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness import schema
from harness.charts import common
from harness.charts import connections as charts_connections
from harness.charts import detail as charts_detail
from harness.charts import overview as charts_overview
from harness.charts.common import (
    CI_LABEL,
    FIGSIZE,
    GENERATOR_LABEL,
    LOAD_AXES,
    Colour,
    LineStyle,
    LoadAxis,
    target_colours,
)
from harness.results import factors
from harness.results.factors import FACTORS_CAPTION, factors_chart_path
from harness.results.folder import Results, load, per_second
from harness.results.rows import scenario_rows

__all__ = [
    "CAPTIONS",
    "CI_LABEL",
    "FACTORS_CAPTION",
    "GENERATOR_LABEL",
    "LOAD_AXES",
    "LoadAxis",
    "chart_paths",
    "draw_charts",
    "factors_chart_path",
    "overview_chart_path",
    "stall_chart_path",
    "target_colours",
]

# Per scenario and load model, in report order: chart name -> the question it answers.
CAPTIONS: dict[str, str] = {
    "throughput": "How many requests per second did each stack serve as load grew, and how "
    "close did it come to its Little's-law bound (dashed)?",
    "latency": "How long did requests take as load grew: median (p50), p99 and p99.9?",
    "knee": "How much throughput does each stack give before its p99 latency takes off "
    "(the knee of the curve)?",
    "percentiles": "At the highest load every target completed, how is latency spread out "
    "to the slowest requests (an HDR percentile plot)?",
    "timeline": "Was throughput steady through the measurement window at that load, or did "
    "it stall or wobble?",
    "resources": "What did each stack cost in server CPU and memory as load grew, and did "
    "the load generator run out of CPU (thin grey)?",
}
OVERVIEW_CAPTION = (
    "Across scenarios, how many times the throughput of the WSGI stack does the ASGI stack "
    "serve at the highest load both completed (above 1.0: ASGI served more)?"
)
STALL_CAPTION = "What happened to throughput, second by second, while the server was paused?"


def chart_paths(run_dir: Path | str, scenario: str, load_model: str = "closed") -> dict[str, Path]:
    """Where each chart of a scenario (and load model) goes, by name, in report order."""
    axis = LOAD_AXES.get(load_model, LOAD_AXES["closed"])
    charts = Path(run_dir) / schema.CHARTS_DIR
    return {name: charts / f"{scenario}{axis.suffix}_{name}.png" for name in CAPTIONS}


def stall_chart_path(run_dir: Path | str, scenario: str) -> Path:
    """Where the throughput-over-time chart of a scenario's stalled cells goes."""
    return Path(run_dir) / schema.CHARTS_DIR / f"{scenario}_stall.png"


def overview_chart_path(run_dir: Path | str) -> Path:
    """Where the ASGI/WSGI throughput-ratio chart across scenarios goes."""
    return Path(run_dir) / schema.CHARTS_DIR / "overview_asgi_wsgi.png"


# Per load model: (column, legend label, marker, line style) of each latency line.
LATENCY_LINES: dict[str, list[tuple[str, str, str, LineStyle]]] = {
    "closed": [
        ("p50_ms", "p50 (median)", "o", "-"),
        ("p99_ms", "p99", "^", "--"),
        ("p999_ms", "p99.9", "d", ":"),
    ],
    "open": [
        ("p50_ms", "p50 from the intended start", "o", "-"),
        ("p99_ms", "p99 from the intended start (corrected)", "^", "--"),
        ("p999_ms", "p99.9 from the intended start", "d", ":"),
        ("p99_uncorrected_ms", "p99 from the actual send (uncorrected)", "v", "-."),
    ],
}


def _throughput_chart(
    results: Results, scenario: str, rows: pd.DataFrame, axis: LoadAxis, colours: dict[str, Colour]
) -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = common.ok_only(rows)
    for target, group in rows.groupby("target", sort=True):
        colour = colours[str(target)]
        common.plot_series(ax, group, axis.column, "bound_rps", colour, linestyle="--", alpha=0.6)
        common.plot_series(ax, ok[ok["target"] == target], axis.column, "rps", colour, marker="o")
    common.mark_cells(ax, rows, axis.column, "rps", colours)
    common.style_load_axis(ax, rows[axis.column], axis, "throughput (requests/s)")
    ax.set_ylim(bottom=0)
    bound = Line2D([], [], color="grey", linestyle="--", label="Little's-law bound (same colour)")
    common.legend(ax, rows, colours, [bound])
    what = f"throughput (requests/s) vs {axis.label.split(' (')[0]}"
    ax.set_title(common.title(results, scenario, what), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, chart_paths(results.run_dir, scenario, _model(axis))["throughput"])


def _latency_chart(
    results: Results, scenario: str, rows: pd.DataFrame, axis: LoadAxis, colours: dict[str, Colour]
) -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = common.ok_only(rows)
    lines = LATENCY_LINES[_model(axis)]
    for target, group in ok.groupby("target", sort=True):
        colour = colours[str(target)]
        for column, _label, marker, line in lines:
            common.plot_series(
                ax, group, axis.column, column, colour, marker=marker, linestyle=line
            )
    common.mark_cells(ax, rows, axis.column, "p99_ms", colours)
    common.style_load_axis(ax, rows[axis.column], axis, "latency (ms)")
    values = pd.concat([ok[line[0]] for line in lines])
    if not common.log_if_wide(ax, values):
        ax.set_ylim(bottom=0)
    styles = [
        Line2D([], [], color="grey", label=label, marker=marker, linestyle=line)
        for _column, label, marker, line in lines
    ]
    common.legend(ax, rows, colours, styles)
    what = f"latency (ms) vs {axis.label.split(' (')[0]}"
    note = "" if _model(axis) == "closed" else "open load: latency from each intended start"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, chart_paths(results.run_dir, scenario, _model(axis))["latency"])


def _stall_chart(
    results: Results, scenario: str, rows: pd.DataFrame, colours: dict[str, Colour]
) -> Path | None:
    """Successful requests per second of each stalled cell, the stall shaded."""
    ok = common.ok_only(rows)
    stalled = ok[ok["stall_for_s"].notna()].sort_values(["load_model", "target"])
    series = [
        (row, per_second(results.run_dir, str(row["cell_id"]))) for _, row in stalled.iterrows()
    ]
    series = [(row, frame) for row, frame in series if not frame.empty]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for row, frame in series:
        colour = colours[str(row["target"])]
        load = f"{row['rate']:g}/s open" if row["load_model"] == "open" else f"{row['users']} users"
        counts = charts_detail.per_second_counts(frame)
        ax.stairs(
            counts.to_numpy(),
            np.arange(len(counts) + 1),
            baseline=None,
            color=colour,
            linewidth=1.8,
            linestyle="-" if row["load_model"] == "open" else "--",
            label=f"{row['target']}, {load}",
        )
        if not pd.isna(row["stall_at_s"]):
            at = float(row["stall_at_s"])
            ax.axvspan(at, at + float(row["stall_for_s"]), color=colour, alpha=0.15)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds into the measurement window")
    ax.set_ylabel("successful requests per second")
    ax.grid(True, alpha=0.35)
    handles, _labels = ax.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.3, label="server stalled (SIGSTOP)"))
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    what = "throughput (requests/s) over time around the injected stall"
    ax.set_title(common.title(results, scenario, what), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, stall_chart_path(results.run_dir, scenario))


def _model(axis: LoadAxis) -> str:
    return next(model for model, known in LOAD_AXES.items() if known == axis)


def draw_charts(run_dir: Path | str) -> list[Path]:
    """Draw every chart of a run into RUN/charts/; returns the files written.

    Scenarios (and load models) without a single ok cell are skipped; so is a chart that has
    nothing to show (no histogram recorded, no ASGI and WSGI target to compare).
    """
    results = load(run_dir)
    colours = target_colours(results.target_names)
    written: list[Path] = []
    for scenario in results.scenario_names:
        for model, axis in LOAD_AXES.items():
            rows = scenario_rows(results, scenario, model)
            if common.ok_only(rows).empty:
                continue
            paths = chart_paths(results.run_dir, scenario, model)
            written.append(_throughput_chart(results, scenario, rows, axis, colours))
            written.append(_latency_chart(results, scenario, rows, axis, colours))
            for name, draw in charts_detail.DRAWERS.items():
                path = draw(results, scenario, rows, axis, colours, paths[name])
                written += [path] if path else []
            factor_chart = factors.factors_chart(results, scenario, model)
            written += [factor_chart] if factor_chart else []
        summary = results.summary
        scenario_all = summary[summary["scenario"].eq(scenario).fillna(False)]
        stall = _stall_chart(results, scenario, scenario_all, colours)
        written += [stall] if stall else []
    written += charts_connections.draw_connection_charts(results, colours)
    overview = charts_overview.ratio_chart(results, colours, overview_chart_path(run_dir))
    written += [overview] if overview else []
    return written
