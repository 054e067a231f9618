"""The charts of a run: per scenario, throughput and latency against load, as PNG files.

This module owns ``RUN/charts/*.png`` and their names. It reads the run through
``harness.results`` only. Each target keeps one colour across every chart of a run (from the
sorted target names); the Little's-law bound is drawn dashed in the target's colour; failed
cells are red crosses on the x axis and flagged cells (errors, generator-bound) hollow markers.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness import schema
from harness.results import Results, load

DPI = 110
FIGSIZE = (8.0, 5.0)
LOG_RATIO = 20.0  # use a log axis when the data spans more than this factor
Colour = tuple[float, float, float, float]


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


def _by_load(rows: pd.DataFrame, x: str, value: str) -> pd.DataFrame:
    """Median, min and max of ``value`` across trials at each load level."""
    data = pd.DataFrame({"x": rows[x].astype("float64"), "v": rows[value].astype("float64")})
    data = data.dropna()
    grouped = data.groupby("x")["v"].agg(["median", "min", "max", "count"]).reset_index()
    return grouped.sort_values("x")


def _plot_series(
    ax: Axes, rows: pd.DataFrame, x: str, value: str, colour: Colour, **style: object
) -> None:
    stats = _by_load(rows, x, value)
    if stats.empty:
        return
    if (stats["count"] > 1).any():
        yerr = np.vstack([stats["median"] - stats["min"], stats["max"] - stats["median"]])
        ax.errorbar(stats["x"], stats["median"], yerr=yerr, color=colour, capsize=3, **style)  # type: ignore[arg-type]
    else:
        ax.plot(stats["x"], stats["median"], color=colour, **style)  # type: ignore[arg-type]


def _flagged(rows: pd.DataFrame) -> pd.Series:
    errors = rows["failures"].fillna(0).astype("int64") > 0
    generator = rows["generator_bound"].fillna(False).astype(bool)
    return errors | generator


def _mark_cells(
    ax: Axes, rows: pd.DataFrame, x: str, value: str, colours: dict[str, Colour]
) -> None:
    """Hollow markers on flagged ok cells, red crosses on the x axis for failed ones."""
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    flagged = ok[_flagged(ok)]
    for target, group in flagged.groupby("target"):
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


def _legend(ax: Axes, rows: pd.DataFrame, colours: dict[str, Colour], extra: list[Line2D]) -> None:
    handles = [
        Line2D([], [], color=colours[name], marker="o", label=name)
        for name in sorted(rows["target"].dropna().astype(str).unique())
    ]
    handles += extra
    ok = rows[rows["status"].eq(schema.STATUS_OK).fillna(False)]
    if _flagged(ok).any():
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=10,
                markerfacecolor="none",
                markeredgecolor="grey",
                label="flagged: errors or generator-bound",
            )
        )
    if (~rows["status"].eq(schema.STATUS_OK).fillna(False)).any():
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="x",
                color="red",
                markeredgewidth=2,
                label="failed cell (no data)",
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
    for target, group in ok.groupby("target", sort=True):
        colour = colours[str(target)]
        _plot_series(ax, group, axis.column, "p50_ms", colour, marker="o")
        _plot_series(ax, group, axis.column, "p99_ms", colour, marker="^", linestyle="--")
    _mark_cells(ax, rows, axis.column, "p99_ms", colours)
    _style_axes(ax, rows[axis.column], axis, "latency (ms)")
    values = pd.concat([ok["p50_ms"], ok["p99_ms"]]).astype("float64").dropna()
    values = values[values > 0]
    if len(values) and values.max() / values.min() > LOG_RATIO:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(bottom=0)
    styles = [
        Line2D([], [], color="grey", marker="o", label="p50 (median)"),
        Line2D([], [], color="grey", marker="^", linestyle="--", label="p99"),
    ]
    _legend(ax, rows, colours, styles)
    ax.set_title(_title(results, scenario, "latency", axis), fontsize=10)
    fig.tight_layout()
    return _save(fig, chart_paths(results.run_dir, scenario, _model(axis))["latency"])


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
    return written
