"""The charts of a run: per scenario, throughput and latency against load, as PNG files.

This module owns ``RUN/charts/*.png`` and their names. It reads the run through
``harness.results`` only. Each target keeps one colour across every chart of a run (from the
sorted target names); the Little's-law bound is drawn dashed in the target's colour. A point
is the median over trials; with more than one trial its error bar is the 95% confidence
interval of the mean (Student's t, from summary.csv). Generator-bound cells get a black hollow
square (they measure the load generator, not the server), cells with more than 5% errors a
hollow circle, stalled cells a "stall" note, and failed or skipped cells red crosses on the x
axis. Open-load latency charts draw p99 from the intended start (corrected for coordinated
omission, solid) and from the actual send (uncorrected, dotted). A scenario with stalled cells
also gets ``<scenario>_stall.png``: successful requests per second over the window, stall shaded.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness import schema
from harness.results import Results, load, per_second
from harness.summary import ERROR_RATE_LIMIT

DPI = 110
FIGSIZE = (8.0, 5.0)
LOG_RATIO = 20.0  # use a log axis when the data spans more than this factor
Colour = tuple[float, float, float, float]
LineStyle = Literal["-", "--", ":"]


@dataclass(frozen=True)
class LoadAxis:
    """How a load model is put on the x axis."""

    column: str
    label: str
    suffix: str  # file-name suffix, "" for the default closed load


LOAD_AXES = {
    "closed": LoadAxis("users", "concurrent users", ""),
    "open": LoadAxis("rate", "offered arrival rate (requests/s)", "_open"),
}


def chart_paths(run_dir: Path | str, scenario: str, load_model: str = "closed") -> dict[str, Path]:
    """Where the throughput and latency charts of a scenario (and load model) go."""
    axis = LOAD_AXES.get(load_model, LOAD_AXES["closed"])
    charts = Path(run_dir) / schema.CHARTS_DIR
    return {
        "throughput": charts / f"{scenario}{axis.suffix}_throughput.png",
        "latency": charts / f"{scenario}{axis.suffix}_latency.png",
    }


def target_colours(target_names: list[str]) -> dict[str, Colour]:
    """One colour per target, stable for a given set of names (sorted before assigning)."""
    palette = plt.get_cmap("tab10")
    return {name: palette(index % 10) for index, name in enumerate(sorted(target_names))}


# Error bars of a figure: the summary columns holding its confidence interval over trials.
CI_COLUMNS = {"rps": ("rps_ci_low", "rps_ci_high"), "p99_ms": ("p99_ci_low_ms", "p99_ci_high_ms")}
CI_LABEL = "error bars: 95% CI of the mean over trials (Student's t)"
GENERATOR_LABEL = "generator-bound: measures the load generator"


def _by_load(rows: pd.DataFrame, x: str, value: str) -> pd.DataFrame:
    """Median across trials of ``value`` at each load level, with its CI when there is one."""
    low, high = CI_COLUMNS.get(value, (value, value))
    data = pd.DataFrame(
        {
            "x": rows[x].astype("float64"),
            "v": rows[value].astype("float64"),
            "low": rows[low].astype("float64"),
            "high": rows[high].astype("float64"),
        }
    ).dropna(subset=["x", "v"])
    grouped = data.groupby("x").agg(
        median=("v", "median"), low=("low", "first"), high=("high", "first"), count=("v", "size")
    )
    return grouped.reset_index().sort_values("x")


def _plot_series(
    ax: Axes, rows: pd.DataFrame, x: str, value: str, colour: Colour, **style: object
) -> None:
    stats = _by_load(rows, x, value)
    if stats.empty:
        return
    bars = stats[(stats["count"] > 1) & stats["low"].notna() & stats["high"].notna()]
    ax.plot(stats["x"], stats["median"], color=colour, **style)  # type: ignore[arg-type]
    if len(bars) and value in CI_COLUMNS:
        # The CI is of the mean, the point the median: clip so a bar never points backwards.
        below = (bars["median"] - bars["low"]).clip(lower=0)
        above = (bars["high"] - bars["median"]).clip(lower=0)
        ax.errorbar(
            bars["x"],
            bars["median"],
            yerr=np.vstack([below, above]),
            color=colour,
            linestyle="none",
            capsize=4,
            alpha=float(style.get("alpha", 1.0)),  # type: ignore[arg-type]
        )


def _has_error_bars(rows: pd.DataFrame) -> bool:
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    return bool((ok["trials"].fillna(0) > 1).any() and ok["rps_ci_low"].notna().any())


def _generator_bound(rows: pd.DataFrame) -> pd.Series:
    return rows["generator_bound"].fillna(False).astype(bool)


def _erroring(rows: pd.DataFrame) -> pd.Series:
    return rows["error_rate"].fillna(0.0).astype("float64") > ERROR_RATE_LIMIT


def _mark_cells(
    ax: Axes, rows: pd.DataFrame, x: str, value: str, colours: dict[str, Colour]
) -> None:
    """Marks on ok cells not to trust; red crosses on the x axis for cells without data."""
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    for target, group in ok[_erroring(ok)].groupby("target"):
        ax.plot(
            group[x].astype("float64"),
            group[value].astype("float64"),
            linestyle="none",
            marker="o",
            markersize=11,
            markerfacecolor="none",
            markeredgecolor=colours[str(target)],
            markeredgewidth=1.5,
            zorder=4,
        )
    bound = ok[_generator_bound(ok)]
    ax.plot(
        bound[x].astype("float64"),
        bound[value].astype("float64"),
        linestyle="none",
        marker="s",
        markersize=15,
        markerfacecolor="none",
        markeredgecolor="black",
        markeredgewidth=1.8,
        zorder=5,
    )
    stalled = ok[ok["stall_for_s"].notna() & ok[value].notna()]
    for _, row in stalled.iterrows():
        ax.annotate(
            f"stall {float(row['stall_for_s']):g} s",
            (float(row[x]), float(row[value])),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
        )
    failed = rows[~rows["status"].eq(schema.STATUS_OK).fillna(False)]
    failed = failed[failed[x].notna()]
    if len(failed):
        # Sit on the bottom edge whatever the y scale, so a failure never looks like a value.
        ax.plot(
            failed[x].astype("float64"),
            np.zeros(len(failed)),
            linestyle="none",
            marker="x",
            markersize=9,
            markeredgewidth=2,
            color="red",
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            zorder=5,
        )


def _hollow(marker: str, size: float, edge: str, label: str) -> Line2D:
    return Line2D(
        [],
        [],
        linestyle="none",
        marker=marker,
        markersize=size,
        markerfacecolor="none",
        markeredgecolor=edge,
        markeredgewidth=1.5,
        label=label,
    )


def _legend(ax: Axes, rows: pd.DataFrame, colours: dict[str, Colour], extra: list[Line2D]) -> None:
    handles = [
        Line2D([], [], color=colours[name], marker="o", label=name)
        for name in sorted(rows["target"].dropna().astype(str).unique())
    ]
    handles += extra
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    if _has_error_bars(rows):
        handles.append(Line2D([], [], color="grey", marker="|", markersize=12, label=CI_LABEL))
    if _generator_bound(ok).any():
        handles.append(_hollow("s", 11, "black", GENERATOR_LABEL))
    if _erroring(ok).any():
        handles.append(_hollow("o", 10, "grey", f"error rate > {ERROR_RATE_LIMIT:.0%}"))
    if (~rows["status"].eq(schema.STATUS_OK).fillna(False)).any():
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="x",
                color="red",
                markeredgewidth=2,
                label="failed or skipped cell (no data)",
            )
        )
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)


def _style_axes(ax: Axes, xs: pd.Series, axis: LoadAxis, ylabel: str) -> None:
    values = sorted(set(xs.dropna().astype("float64")))
    positive = [v for v in values if v > 0]
    if positive and positive[-1] / positive[0] > LOG_RATIO:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if values:
        ax.set_xticks(values)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel(axis.label)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.35)


def _title(results: Results, scenario: str, what: str, axis: LoadAxis) -> str:
    description = results.scenario_description(scenario)
    if len(description) > 90:
        description = description[:87].rstrip() + "..."
    title = f"{scenario}: {what} vs {axis.label.split(' (')[0]}"
    return f"{title}\n{description}" if description else title


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png.tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return path


# Per load model: (column, legend label, marker, line style) of each latency line.
LATENCY_LINES: dict[str, list[tuple[str, str, str, LineStyle]]] = {
    "closed": [("p50_ms", "p50 (median)", "o", "-"), ("p99_ms", "p99", "^", "--")],
    "open": [
        ("p99_ms", "p99 from the intended start (corrected)", "^", "-"),
        ("p99_uncorrected_ms", "p99 from the actual send (uncorrected)", "v", ":"),
    ],
}


def _throughput_chart(
    results: Results, scenario: str, rows: pd.DataFrame, axis: LoadAxis, colours: dict[str, Colour]
) -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    for target, group in rows.groupby("target", sort=True):
        colour = colours[str(target)]
        _plot_series(ax, group, axis.column, "bound_rps", colour, linestyle="--", alpha=0.6)
        _plot_series(ax, ok[ok["target"] == target], axis.column, "rps", colour, marker="o")
    _mark_cells(ax, rows, axis.column, "rps", colours)
    _style_axes(ax, rows[axis.column], axis, "throughput (requests/s)")
    ax.set_ylim(bottom=0)
    bound = Line2D([], [], color="grey", linestyle="--", label="Little's-law bound (same colour)")
    _legend(ax, rows, colours, [bound])
    ax.set_title(_title(results, scenario, "throughput", axis), fontsize=10)
    fig.tight_layout()
    return _save(fig, chart_paths(results.run_dir, scenario, _model(axis))["throughput"])


def _latency_chart(
    results: Results, scenario: str, rows: pd.DataFrame, axis: LoadAxis, colours: dict[str, Colour]
) -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    # Closed load: p50 and p99. Open load: p99 with and without coordinated omission.
    lines = LATENCY_LINES[_model(axis)]
    for target, group in ok.groupby("target", sort=True):
        colour = colours[str(target)]
        for column, _label, marker, line in lines:
            _plot_series(ax, group, axis.column, column, colour, marker=marker, linestyle=line)
    _mark_cells(ax, rows, axis.column, "p99_ms", colours)
    _style_axes(ax, rows[axis.column], axis, "latency (ms)")
    values = pd.concat([ok[line[0]] for line in lines]).astype("float64").dropna()
    values = values[values > 0]
    if len(values) and values.max() / values.min() > LOG_RATIO:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(bottom=0)
    styles = [
        Line2D([], [], color="grey", label=label, marker=marker, linestyle=line)
        for _column, label, marker, line in lines
    ]
    _legend(ax, rows, colours, styles)
    ax.set_title(_title(results, scenario, "latency", axis), fontsize=10)
    fig.tight_layout()
    return _save(fig, chart_paths(results.run_dir, scenario, _model(axis))["latency"])


def stall_chart_path(run_dir: Path | str, scenario: str) -> Path:
    """Where the throughput-over-time chart of a scenario's stalled cells goes."""
    return Path(run_dir) / schema.CHARTS_DIR / f"{scenario}_stall.png"


def _stall_chart(
    results: Results, scenario: str, rows: pd.DataFrame, colours: dict[str, Colour]
) -> Path | None:
    """Successful requests per second of each stalled cell, the stall shaded."""
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
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
        # A second without a completion is absent from the record: it counts 0.
        counts = frame.set_index("second")["successes"].astype("float64")
        counts = counts.reindex(range(int(counts.index.max()) + 1), fill_value=0.0)
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
    ax.set_title(f"{scenario}: throughput over time around the injected stall", fontsize=10)
    fig.tight_layout()
    return _save(fig, stall_chart_path(results.run_dir, scenario))


def _model(axis: LoadAxis) -> str:
    return next(model for model, known in LOAD_AXES.items() if known == axis)


def draw_charts(run_dir: Path | str) -> list[Path]:
    """Draw every chart of a run into RUN/charts/; returns the files written.

    Scenarios (and load models) without a single ok cell are skipped.
    """
    results = load(run_dir)
    colours = target_colours(results.target_names)
    written: list[Path] = []
    summary = results.summary
    for scenario in results.scenario_names:
        for model, axis in LOAD_AXES.items():
            rows = summary[
                summary["scenario"].eq(scenario).fillna(False)
                & summary["load_model"].eq(model).fillna(False)
            ]
            if not rows["status"].eq(schema.STATUS_OK).fillna(False).any():
                continue
            written.append(_throughput_chart(results, scenario, rows, axis, colours))
            written.append(_latency_chart(results, scenario, rows, axis, colours))
        scenario_rows = summary[summary["scenario"].eq(scenario).fillna(False)]
        stall = _stall_chart(results, scenario, scenario_rows, colours)
        written += [stall] if stall else []
    return written
