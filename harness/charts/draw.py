"""Drawing every chart of a run into ``RUN/charts/``, and the two charts against load.

``draw_charts(run_dir)`` draws, per scenario and load model: throughput (with the bound, the
lowest ceiling of the roofline, as a wide pale line in the target's colour behind the measured
one, so both show where they meet) and latency (p50 solid, p99 dashed, p99.9 dotted with open
diamonds that still show around an equal p99; open load adds p99 from the actual send,
dash-dotted, beside the figures from the intended start), here; the knee, the latency
distribution, throughput over time and resources (``harness.charts.detail``); what each single
change of stack does (``harness.charts.factors``, when two targets differ in one thing only).
A scenario with one load level, or whose ok cells are all generator-bound, gets no throughput,
latency or knee chart (``harness.charts.paths.skipped_charts`` says which and why). Per
scenario, a scenario with stalled cells gets ``<scenario>_stall.png`` (``harness.charts.detail``)
and one with long-lived connections its connections chart (``harness.charts.connections``);
across scenarios, the ASGI/WSGI ratio (``harness.charts.overview``) and, when the run has
scenarios that need a database or an upstream service, the real-I/O chart
(``harness.charts.real_io``), and when it has TLS, new-connection or HTTP/2 cells the protocol
chart (``harness.charts.protocol``). File names and captions
are ``harness.charts.paths``'; shared marks, colours and saving ``harness.charts.common``'s.
Everything is read through ``harness.results`` only.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from harness.charts import common
from harness.charts import connections as charts_connections
from harness.charts import detail as charts_detail
from harness.charts import factors as charts_factors
from harness.charts import overview as charts_overview
from harness.charts import protocol as charts_protocol
from harness.charts import real_io as charts_real_io
from harness.charts.common import (
    BOUND_LABEL,
    BOUND_STYLE,
    FIGSIZE,
    Colour,
    LineStyle,
    target_colours,
)
from harness.charts.paths import (
    chart_paths,
    overview_chart_path,
    protocol_chart_path,
    real_io_chart_path,
    skipped_charts,
    stall_chart_path,
)
from harness.results.folder import Results, load
from harness.results.rows import LOAD_AXES, LoadAxis, ok_only

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
# p99.9 often equals p99 (few requests past the 99th percentile): open, larger markers on top,
# so a filled p99 triangle still shows inside its p99.9 diamond.
MARKER_STYLE: dict[str, dict[str, object]] = {
    "p999_ms": {"markerfacecolor": "none", "markersize": 10, "markeredgewidth": 1.4, "zorder": 3}
}


def _throughput_chart(
    results: Results, scenario: str, rows: pd.DataFrame, axis: LoadAxis, colours: dict[str, Colour]
) -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = ok_only(rows)
    for target, group in rows.groupby("target", sort=True):
        colour = colours[str(target)]
        common.plot_series(ax, group, axis.column, "bound_rps", colour, **BOUND_STYLE)
        measured = ok[ok["target"] == target]
        common.plot_series(ax, measured, axis.column, "rps", colour, marker="o", zorder=2)
    common.mark_cells(ax, rows, axis.column, "rps", colours)
    common.style_load_axis(ax, rows[axis.column], axis.label, "throughput (requests/s)")
    ax.set_ylim(bottom=0)
    bound = Line2D([], [], color="grey", label=BOUND_LABEL, **BOUND_STYLE)  # type: ignore[arg-type]
    common.legend(ax, rows, colours, [bound])
    what = f"throughput (requests/s) vs {axis.label.split(' (')[0]}"
    ax.set_title(common.title(results, scenario, what), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, chart_paths(results.run_dir, scenario, axis.model)["throughput"])


def _latency_chart(
    results: Results, scenario: str, rows: pd.DataFrame, axis: LoadAxis, colours: dict[str, Colour]
) -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = ok_only(rows)
    lines = LATENCY_LINES[axis.model]
    for target, group in ok.groupby("target", sort=True):
        colour = colours[str(target)]
        for column, _label, marker, line in lines:
            extra = MARKER_STYLE.get(column, {})
            common.plot_series(
                ax, group, axis.column, column, colour, marker=marker, linestyle=line, **extra
            )
    common.mark_cells(ax, rows, axis.column, "p99_ms", colours)
    common.style_load_axis(ax, rows[axis.column], axis.label, "latency (ms)")
    values = pd.concat([ok[line[0]] for line in lines])
    if not common.log_if_wide(ax, values):
        ax.set_ylim(bottom=0)
    styles = [
        Line2D(
            [],
            [],
            color="grey",
            label=label,
            marker=marker,
            linestyle=line,
            **MARKER_STYLE.get(column, {}),  # type: ignore[arg-type]
        )
        for column, label, marker, line in lines
    ]
    common.legend(ax, rows, colours, styles)
    what = f"latency (ms) vs {axis.label.split(' (')[0]}"
    note = "" if axis.model == "closed" else "open load: latency from each intended start"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, chart_paths(results.run_dir, scenario, axis.model)["latency"])


def draw_charts(run_dir: Path | str, workers: int = 1) -> list[Path]:
    """Draw every chart of a run into RUN/charts/; returns the files written.

    Scenarios (and load models) without a single ok cell are skipped; so is a chart that has
    nothing to show (no histogram recorded, no ASGI and WSGI target to compare). With
    ``workers`` > 1 the scenarios are drawn by that many forked processes while this one
    draws the run-wide charts; the files are the same as when drawn one after the other.
    """
    global _forked
    results = load(run_dir)
    colours = target_colours(results.target_names)
    scenarios = results.scenario_names
    if workers <= 1 or len(scenarios) < 2 or "fork" not in mp.get_all_start_methods():
        written = [p for name in scenarios for p in scenario_charts(results, name, colours)]
        return written + run_wide_charts(results, colours)
    _forked = results  # the workers inherit it: nothing is read twice
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            jobs = [pool.submit(_scenario_job, name) for name in scenarios]
            run_wide = run_wide_charts(results, colours)
            return [p for job in jobs for p in job.result()] + run_wide
    finally:
        _forked = None


_forked: Results | None = None


def _scenario_job(scenario: str) -> list[Path]:
    assert _forked is not None
    return scenario_charts(_forked, scenario, target_colours(_forked.target_names))


def scenario_charts(results: Results, scenario: str, colours: dict[str, Colour]) -> list[Path]:
    """Every chart of one scenario: per load model, then its stall chart.

    The charts ``skipped_charts`` leaves out are not drawn, and an old file of one is removed,
    so the folder never shows a chart the report says was left out."""
    written: list[Path] = []
    for model, axis in LOAD_AXES.items():
        rows = results.scenario_rows(scenario, model)
        if ok_only(rows).empty:
            continue
        paths = chart_paths(results.run_dir, scenario, model)
        skipped = skipped_charts(results, scenario, model)
        for name in skipped:
            paths[name].unlink(missing_ok=True)
        if "throughput" not in skipped:
            written.append(_throughput_chart(results, scenario, rows, axis, colours))
        if "latency" not in skipped:
            written.append(_latency_chart(results, scenario, rows, axis, colours))
        for name, draw in charts_detail.DRAWERS.items():
            path = (
                None
                if name in skipped
                else draw(results, scenario, rows, axis, colours, paths[name])
            )
            written += [path] if path else []
        factor_chart = charts_factors.factors_chart(results, scenario, model)
        written += [factor_chart] if factor_chart else []
    all_models = results.scenario_rows(scenario)
    stall_path = stall_chart_path(results.run_dir, scenario)
    stall = charts_detail.stall_chart(results, scenario, all_models, colours, stall_path)
    return written + ([stall] if stall else [])


def run_wide_charts(results: Results, colours: dict[str, Colour]) -> list[Path]:
    """The charts across scenarios: long-lived connections, the ASGI/WSGI overview, real I/O,
    the protocol chart."""
    written = charts_connections.draw_connection_charts(results, colours)
    overview = charts_overview.ratio_chart(results, colours, overview_chart_path(results.run_dir))
    real_io_path = real_io_chart_path(results.run_dir)
    real_io = charts_real_io.real_io_chart(results, colours, real_io_path)
    if real_io is None:
        real_io_path.unlink(missing_ok=True)  # never a chart the report does not show
    protocol_path = protocol_chart_path(results.run_dir)
    protocol = charts_protocol.protocol_chart(results, protocol_path)
    if protocol is None:
        protocol_path.unlink(missing_ok=True)
    drawn = [chart for chart in (overview, real_io, protocol) if chart]
    return written + drawn
