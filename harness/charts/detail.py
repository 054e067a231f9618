"""Charts that look closer at a scenario: the knee, resources, and one load level in detail.

Per scenario and load model: p99 latency against throughput (the knee, one line per target
through its load levels), server CPU and memory against load (the generator's CPU thin dashed in
the target's colour), and at one load level (``harness.results.rows.chart_level``: the highest
every target completed, as the headline findings use) the HDR percentile plot of latency and
the successful requests of every second of the measurement window. Per scenario, the stalled
cells' requests of every second around the stall. Each returns None when it has nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, NullLocator

from harness.charts import common
from harness.charts.common import FIGSIZE, Colour
from harness.format import load_text
from harness.histogram import UNIT_TO_MS, decode_histogram
from harness.results.flags import GENERATOR_CPU_LIMIT_PCT
from harness.results.folder import Results, per_second
from harness.results.raw import read_latency
from harness.results.rows import LoadAxis, chart_level, generator_bound, ok_only

Drawer = Callable[[Results, str, pd.DataFrame, LoadAxis, dict[str, Colour], Path], Path | None]

# The percentile axis: 1/(1-q) on a log scale, labelled with q.
PERCENTILE_TICKS: dict[float, str] = {
    1.0: "0%",
    2.0: "50%",
    10.0: "90%",
    100.0: "99%",
    1e3: "99.9%",
    1e4: "99.99%",
    1e5: "99.999%",
    1e6: "99.9999%",
}
PERCENTILE_POINTS = 240  # points along each percentile curve
# The load generator's CPU on the resources chart: the target's colour, thin and dashed.
GENERATOR_STYLE: dict[str, object] = {
    "linestyle": "--",
    "linewidth": 1.0,
    "marker": ".",
    "markersize": 7,
}
GENERATOR_LEGEND = "generator (locust) CPU % (thin dashed)"


def _medians(ok: pd.DataFrame, x: str, columns: list[str]) -> pd.DataFrame:
    return ok.groupby(x)[columns].median().sort_index()


def knee_chart(
    results: Results,
    scenario: str,
    rows: pd.DataFrame,
    axis: LoadAxis,
    colours: dict[str, Colour],
    path: Path,
) -> Path | None:
    """x = throughput, y = p99, one line per target through its load levels, levels labelled."""
    ok = ok_only(rows).dropna(subset=["rps", "p99_ms", axis.column])
    if ok.empty:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for target, group in ok.groupby("target", sort=True):
        colour = colours[str(target)]
        points = _medians(group, axis.column, ["rps", "p99_ms"])
        ax.plot(points["rps"], points["p99_ms"], color=colour, marker="o")
        for level, point in points.iterrows():
            ax.annotate(
                f"{float(level):g}",  # type: ignore[arg-type]
                (float(point["rps"]), float(point["p99_ms"])),
                xytext=(5, 4),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
    common.mark_cells(ax, ok, "rps", "p99_ms", colours)
    if not common.log_if_wide(ax, ok["rps"], "x"):
        ax.set_xlim(left=0)
    if not common.log_if_wide(ax, ok["p99_ms"]):
        ax.set_ylim(bottom=0)
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.grid(True, which="major", alpha=0.35)
    common.legend(ax, rows, colours, [], failed=False)
    labels = "concurrent users" if axis.column == "users" else "offered rate (requests/s)"
    note = f"numbers at the points: {labels}; up and to the left is worse"
    what = "p99 latency (ms) vs throughput (requests/s): the knee"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, path)


def _at_level(rows: pd.DataFrame, axis: LoadAxis) -> tuple[float | None, pd.DataFrame]:
    level = chart_level(rows, axis.column)
    ok = ok_only(rows)
    return level, ok[ok[axis.column] == level] if level is not None else ok.iloc[0:0]


def merged_histogram(results: Results, cell_ids: list[str]) -> tuple[HdrHistogram | None, float]:
    """The cells' latency histograms added together (trials), and the factor to milliseconds."""
    merged: HdrHistogram | None = None
    to_ms = 1e-3
    for cell_id in cell_ids:
        latency = read_latency(results.run_dir, cell_id) or {}
        encoded = latency.get("histogram")
        unit = str(latency.get("unit", "us"))
        if not encoded or unit not in UNIT_TO_MS:
            continue
        try:
            histogram = decode_histogram(encoded)
        except ValueError:
            continue
        if merged is not None and UNIT_TO_MS[unit] != to_ms:
            continue  # never mix units within one curve
        to_ms = UNIT_TO_MS[unit]
        if merged is None:
            merged = histogram
        else:
            merged.add(histogram)
    if merged is not None and merged.get_total_count() == 0:
        return None, to_ms
    return merged, to_ms


def percentile_curve(histogram: HdrHistogram, to_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """x = 1/(1-q) from 1 (q = 0) to the request count (the slowest request), y = latency ms."""
    count = int(histogram.get_total_count())
    spread = np.logspace(0.0, np.log10(max(count, 1)), PERCENTILE_POINTS)
    spread[0], spread[-1] = 1.0, float(max(count, 1))  # exact ends, no rounding of the log
    quantiles = [float(100.0 * (1.0 - 1.0 / x)) for x in spread[:-1]] + [100.0]
    values = histogram.get_percentile_to_value_dict(quantiles)
    latency = np.array([values[q] * to_ms for q in quantiles], dtype="float64")
    return spread, latency


def _percentile_axis(ax: Axes, right: float) -> None:
    ax.set_xscale("log")
    ticks = [x for x in PERCENTILE_TICKS if x <= right * 1.0001] or [1.0]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(lambda value, _pos: PERCENTILE_TICKS.get(value, ""))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(1.0, max(right, 2.0))
    ax.set_xlabel("percentile (log scale of 1 / (1 - percentile); rightmost: the slowest request)")


def percentile_chart(
    results: Results,
    scenario: str,
    rows: pd.DataFrame,
    axis: LoadAxis,
    colours: dict[str, Colour],
    path: Path,
) -> Path | None:
    """Each target's latency by percentile at the comparison level, from its exact histogram."""
    level, at = _at_level(rows, axis)
    if level is None:
        return None
    curves = []
    for target, group in at.groupby("target", sort=True):
        histogram, to_ms = merged_histogram(results, [str(c) for c in group["cell_id"]])
        if histogram is not None:
            bound = bool(generator_bound(group).any())
            curves.append((str(target), *percentile_curve(histogram, to_ms), bound))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    handles = []
    for target, spread, latency, bound in curves:
        colour = colours[target]
        ax.plot(spread, latency, color=colour, linewidth=1.8, linestyle="--" if bound else "-")
        label = f"{target} ({round(spread[-1]):,} requests)"
        label += ", generator-bound: measures the load generator" if bound else ""
        handles.append(Line2D([], [], color=colour, linestyle="--" if bound else "-", label=label))
    _percentile_axis(ax, max(float(spread[-1]) for _, spread, _, _ in curves))
    if not common.log_if_wide(ax, pd.Series(np.concatenate([c[2] for c in curves]))):
        ax.set_ylim(bottom=0)
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    trials = int(at.groupby("target").size().max())
    note = "exact HDR histograms of every successful request"
    note += f", {trials} trials merged" if trials > 1 else ""
    note += "; from each intended start" if axis.column == "rate" else ""
    what = f"latency distribution at {load_text(axis.model, level)}"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, path)


def per_second_counts(frame: pd.DataFrame) -> pd.Series:
    """Successes per second of a window; a second without a completion counts 0."""
    counts = frame.set_index("second")["successes"].astype("float64")
    return counts.reindex(range(int(counts.index.max()) + 1), fill_value=0.0)


def _seconds_stairs(
    ax: Axes, row: pd.Series, counts: pd.Series, colour: Colour, **style: object
) -> None:
    """One cell's successes per second as stairs, its injected stall shaded in its colour."""
    edges = np.arange(len(counts) + 1)
    ax.stairs(counts.to_numpy(), edges, baseline=None, color=colour, **style)  # type: ignore[arg-type]
    if not pd.isna(row["stall_at_s"]) and not pd.isna(row["stall_for_s"]):
        start = float(row["stall_at_s"])
        ax.axvspan(start, start + float(row["stall_for_s"]), color=colour, alpha=0.15)


def _seconds_axes(ax: Axes, stalled: bool) -> list[Artist]:
    """Axes and grid of a per-second chart; its legend handles, the stall's patch if any."""
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds into the measurement window")
    ax.set_ylabel("successful requests per second")
    ax.grid(True, alpha=0.35)
    handles: list[Artist] = list(ax.get_legend_handles_labels()[0])
    if stalled:
        handles.append(Patch(color="grey", alpha=0.3, label="server stalled (SIGSTOP)"))
    return handles


def _warmup_s(results: Results, cell_ids: list[str]) -> float | None:
    cells = {
        c.get("cell_id"): c for c in results.manifest.get("cells") or [] if isinstance(c, dict)
    }
    warmups = [cells.get(cell_id, {}).get("warmup_s") for cell_id in cell_ids]
    numbers = [float(w) for w in warmups if isinstance(w, (int, float))]
    return max(numbers) if numbers else None


def timeline_chart(
    results: Results,
    scenario: str,
    rows: pd.DataFrame,
    axis: LoadAxis,
    colours: dict[str, Colour],
    path: Path,
) -> Path | None:
    """Successful requests in each second of the window, every target at the comparison level."""
    level, at = _at_level(rows, axis)
    if level is None:
        return None
    several = at.groupby("target").size().max() > 1
    series = []
    for _, row in at.sort_values(["target", "trial"]).iterrows():
        frame = per_second(results.run_dir, str(row["cell_id"]))
        if not frame.empty:
            series.append((row, per_second_counts(frame)))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for row, counts in series:
        first = int(row["trial"]) == int(at[at["target"] == row["target"]]["trial"].min())
        label = f"{row['target']}" + (f", trial {row['trial']}" if several else "")
        _seconds_stairs(
            ax,
            row,
            counts,
            colours[str(row["target"])],
            linewidth=1.8 if first else 1.0,
            alpha=1.0 if first else 0.6,
            label=label,
        )
    handles = _seconds_axes(ax, stalled=bool(at["stall_for_s"].notna().any()))
    # Below the axes: the lines span the whole width, so any spot inside would hide one.
    ax.legend(
        handles=handles,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=min(3, len(handles)),
        frameon=False,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    warmup = _warmup_s(results, [str(c) for c in at["cell_id"]])
    note = "the window only" + (
        f": the {warmup:g} s warm-up before it is excluded" if warmup else ""
    )
    what = f"throughput (requests/s) over time at {load_text(axis.model, level)}"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, path)


def stall_chart(
    results: Results, scenario: str, rows: pd.DataFrame, colours: dict[str, Colour], path: Path
) -> Path | None:
    """Successful requests per second of each stalled cell of a scenario, the stall shaded."""
    ok = ok_only(rows)
    stalled = ok[ok["stall_for_s"].notna()].sort_values(["load_model", "target"])
    series = [
        (row, per_second(results.run_dir, str(row["cell_id"]))) for _, row in stalled.iterrows()
    ]
    series = [(row, frame) for row, frame in series if not frame.empty]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for row, frame in series:
        load = f"{row['rate']:g}/s open" if row["load_model"] == "open" else f"{row['users']} users"
        _seconds_stairs(
            ax,
            row,
            per_second_counts(frame),
            colours[str(row["target"])],
            linewidth=1.8,
            linestyle="-" if row["load_model"] == "open" else "--",
            label=f"{row['target']}, {load}",
        )
    handles = _seconds_axes(ax, stalled=True)
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    what = "throughput (requests/s) over time around the injected stall"
    ax.set_title(common.title(results, scenario, what), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, path)


def _peak(frame: pd.DataFrame) -> float:
    values = frame.to_numpy(dtype="float64", na_value=np.nan)
    return float(np.nanmax(values)) if np.isfinite(values).any() else 0.0


def resources_chart(
    results: Results,
    scenario: str,
    rows: pd.DataFrame,
    axis: LoadAxis,
    colours: dict[str, Colour],
    path: Path,
) -> Path | None:
    """Server CPU % (solid) and server memory against load; the generator's CPU thin dashed,
    in the colour of the target it loaded.

    Memory is PSS (pages shared by forked workers split between them) when the run measured
    it, else RSS summed over the server's processes."""
    ok = ok_only(rows)
    memory = "server_pss_mb" if ok["server_pss_mb"].notna().any() else "server_rss_mb"
    kind = "PSS" if memory == "server_pss_mb" else "RSS"
    columns = ["server_cpu_pct", memory, "generator_cpu_pct"]
    if ok[columns].isna().all().all():
        return None
    fig, (cpu, rss) = plt.subplots(1, 2, figsize=(11.0, 4.8))
    for target, group in ok.groupby("target", sort=True):
        colour = colours[str(target)]
        common.plot_series(cpu, group, axis.column, "server_cpu_pct", colour, marker="o")
        generator = common.by_load(group, axis.column, "generator_cpu_pct")
        # In the target's colour (whose load it generated), thin and dashed: the style tells
        # generator from server, the colour tells the targets apart.
        cpu.plot(generator["x"], generator["median"], color=colour, **GENERATOR_STYLE)
        common.plot_series(rss, group, axis.column, memory, colour, marker="o")
    # Several generators on several cores: the generator-bound line is 90% of their cores.
    cores = max(float(ok["generator_budget_pct"].max(skipna=True) or 100.0) / 100.0, 1.0)
    if not math.isfinite(cores):
        cores = 1.0
    limit = GENERATOR_CPU_LIMIT_PCT * cores
    cpu.axhline(limit, color="grey", linestyle=":", linewidth=1.0)
    common.mark_cells(cpu, rows, axis.column, "generator_cpu_pct", colours)
    common.mark_cells(rss, rows, axis.column, memory, colours)
    common.style_load_axis(cpu, rows[axis.column], axis.label, "CPU (% of one core)")
    common.style_load_axis(
        rss, rows[axis.column], axis.label, f"peak {kind} (MB, all server processes)"
    )
    cpu_peak = _peak(ok[["server_cpu_pct", "generator_cpu_pct"]])
    cpu.set_ylim(bottom=0, top=max(110.0, cpu_peak * 1.1))
    rss.set_ylim(bottom=0, top=max(_peak(ok[[memory]]) * 1.15, 1.0))
    cpu.set_title("CPU over the window (mean)", fontsize=common.TITLE_SIZE)
    rss.set_title("server memory over the window (peak)", fontsize=common.TITLE_SIZE)
    styles = [
        Line2D([], [], color="grey", marker="o", label="server CPU % (solid)"),
        Line2D([], [], color="grey", label=GENERATOR_LEGEND, **GENERATOR_STYLE),  # type: ignore[arg-type]
        Line2D(
            [],
            [],
            color="grey",
            linestyle=":",
            label=f"generator-bound at {limit:g}%"
            + (f" ({GENERATOR_CPU_LIMIT_PCT:g}% of {cores:g} cores)" if cores > 1 else ""),
        ),
    ]
    common.legend(cpu, rows, colours, styles)
    what = f"server CPU and memory vs {axis.label.split(' (')[0]}"
    fig.suptitle(common.title(results, scenario, what), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, path)


# Chart name (harness.charts.paths.CAPTIONS) -> how it is drawn.
DRAWERS: dict[str, Drawer] = {
    "knee": knee_chart,
    "percentiles": percentile_chart,
    "timeline": timeline_chart,
    "resources": resources_chart,
}
