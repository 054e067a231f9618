"""What every chart of a run shares: colours, cell marks, legends, axes and saving.

Each target keeps one colour across every chart of a run (from the sorted target names). A
point is the median over trials; with more than one trial its error bar is the 95% confidence
interval of the mean (Student's t, from summary.csv). Generator-bound cells get a black hollow
square (they measure the load generator, not the server), cells with more than 5% errors a
hollow circle, stalled cells a "stall" note, and failed or skipped cells red crosses on the x
axis; which rows those are is ``harness.results.rows``' to say. Every chart module saves
through ``save`` here, called as ``common.save``, so a test can watch every figure as it is
written.
"""

from __future__ import annotations

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
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.charts.paths import skipped_charts as skipped_charts  # the one decision, re-exported
from harness.fileio import replacing
from harness.results.flags import ERROR_RATE_LIMIT
from harness.results.folder import Results
from harness.results.rows import erroring, generator_bound, not_ok, ok_only

DPI = 110
FIGSIZE = (8.0, 5.0)
TITLE_SIZE = 10
LOG_RATIO = 20.0  # use a log axis when the data spans more than this factor
# A log ratio axis gets ticks 1-2-5 up to this many decades, decades only past it: ratio labels
# ("200×") are wider than they are tall, so a horizontal axis fits fewer.
RATIO_TICKS_125 = {"x": 3.0, "y": 4.5}
Colour = tuple[float, float, float, float]
LineStyle = Literal["-", "--", ":", "-."]


# The bound: a wide pale line behind the measured one, so both show where they are equal.
BOUND_STYLE: dict[str, object] = {
    "linestyle": "--",
    "linewidth": 6.0,
    "alpha": 0.3,
    "solid_capstyle": "butt",
    "zorder": 1,
}
BOUND_LABEL = "bound: lowest ceiling (wide pale line, the target's colour)"

# Error bars of a figure: the summary columns holding its confidence interval over trials.
CI_COLUMNS = {"rps": ("rps_ci_low", "rps_ci_high"), "p99_ms": ("p99_ci_low_ms", "p99_ci_high_ms")}
CI_LABEL = "error bars: 95% CI of the mean over trials (Student's t)"
GENERATOR_LABEL = "generator-bound: measures the load generator"


def target_colours(target_names: list[str]) -> dict[str, Colour]:
    """One colour per target, stable for a given set of names (sorted before assigning).

    Up to 10 targets get tab10; more get tab20 and then, past 20, the distinct colours of
    a continuous map, so no two targets of a run share a colour.
    """
    names = sorted(target_names)
    if len(names) <= 10:
        palette = plt.get_cmap("tab10")
        return {name: palette(index) for index, name in enumerate(names)}
    if len(names) <= 20:
        palette = plt.get_cmap("tab20")
        return {name: palette(index) for index, name in enumerate(names)}
    palette = plt.get_cmap("turbo")
    return {name: palette(index / (len(names) - 1)) for index, name in enumerate(names)}


def by_load(rows: pd.DataFrame, x: str, value: str) -> pd.DataFrame:
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


def plot_series(
    ax: Axes, rows: pd.DataFrame, x: str, value: str, colour: Colour, **style: object
) -> None:
    stats = by_load(rows, x, value)
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


def has_error_bars(rows: pd.DataFrame) -> bool:
    ok = ok_only(rows)
    return bool((ok["trials"].fillna(0) > 1).any() and ok["rps_ci_low"].notna().any())


def mark_cells(
    ax: Axes, rows: pd.DataFrame, x: str, value: str, colours: dict[str, Colour]
) -> None:
    """Marks on ok cells not to trust; red crosses on the x axis for cells without data."""
    ok = ok_only(rows)
    for target, group in ok[erroring(ok)].groupby("target"):
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
    bound = ok[generator_bound(ok)]
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
    stalled = ok[ok["stall_for_s"].notna() & ok[value].notna() & ok[x].notna()]
    for _, row in stalled.iterrows():
        ax.annotate(
            f"stall {float(row['stall_for_s']):g} s",
            (float(row[x]), float(row[value])),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
        )
    failed = not_ok(rows)
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


def hollow(marker: str, size: float, edge: str, label: str) -> Line2D:
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


def mark_handles(rows: pd.DataFrame, *, failed: bool = True) -> list[Line2D]:
    """Legend entries for the marks ``mark_cells`` draws on these rows (and error bars)."""
    ok = ok_only(rows)
    handles: list[Line2D] = []
    if has_error_bars(rows):
        handles.append(Line2D([], [], color="grey", marker="|", markersize=12, label=CI_LABEL))
    if generator_bound(ok).any():
        handles.append(hollow("s", 11, "black", GENERATOR_LABEL))
    if erroring(ok).any():
        handles.append(hollow("o", 10, "grey", f"error rate > {ERROR_RATE_LIMIT:.0%}"))
    if failed and not not_ok(rows).empty:
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
    return handles


def target_handles(names: list[str], colours: dict[str, Colour]) -> list[Line2D]:
    return [Line2D([], [], color=colours[name], marker="o", label=name) for name in sorted(names)]


def legend(
    ax: Axes,
    rows: pd.DataFrame,
    colours: dict[str, Colour],
    extra: list[Line2D],
    *,
    failed: bool = True,
) -> None:
    names = list(rows["target"].dropna().astype(str).unique())
    handles = target_handles(names, colours) + extra + mark_handles(rows, failed=failed)
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)


def number_formatter() -> FuncFormatter:
    return FuncFormatter(lambda v, _pos: f"{v:g}")


def log_if_wide(ax: Axes, values: pd.Series, which: Literal["x", "y"] = "y") -> bool:
    """A log scale (ticks 1-2-5) when the positive values span more than LOG_RATIO."""
    numbers = values.astype("float64").dropna()
    numbers = numbers[numbers > 0]
    if not len(numbers) or numbers.max() / numbers.min() <= LOG_RATIO:
        return False
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(number_formatter())
    axis.set_minor_formatter(NullFormatter())
    return True


def wide_ratios(ratios: list[float] | np.ndarray) -> bool:
    """True when the positive ratios span more than LOG_RATIO: they go on a log axis."""
    values = [float(r) for r in ratios if np.isfinite(r) and r > 0]
    return bool(values) and max(values) / min(values) > LOG_RATIO


def times_formatter() -> FuncFormatter:
    """Ratio ticks: "1×", "2×", "0.5×"."""
    return FuncFormatter(lambda v, _pos: f"{v:g}×")


def ratio_log_axis(ax: Axes, low: float, high: float, which: Literal["x", "y"] = "y") -> None:
    """A log ratio axis from ``low`` to ``high``: ticks 1×, 2×, 5×, 10×... while they fit (up to
    RATIO_TICKS_125 decades on that axis), then decades only; no minor labels."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    (ax.set_ylim if which == "y" else ax.set_xlim)(low, high)
    fits = np.log10(high / low) <= RATIO_TICKS_125[which]
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if fits else (1.0,)))
    axis.set_major_formatter(times_formatter())
    axis.set_minor_formatter(NullFormatter())


def style_load_axis(ax: Axes, xs: pd.Series, xlabel: str, ylabel: str) -> None:
    """The x axis of a chart against load: one tick per level, log when the sweep is wide."""
    values = sorted(set(xs.dropna().astype("float64")))
    positive = [v for v in values if v > 0]
    if positive and positive[-1] / positive[0] > LOG_RATIO:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if values:
        ax.set_xticks(values)
        ax.xaxis.set_major_formatter(number_formatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.35)


def title(results: Results, scenario: str, what: str, note: str = "") -> str:
    """ "scenario: what", then the scenario's description (or ``note``) on a second line."""
    second = note or results.scenario_description(scenario)
    if len(second) > 95:
        second = second[:92].rstrip() + "..."
    return f"{scenario}: {what}\n{second}" if second else f"{scenario}: {what}"


def save(fig: Figure, path: Path, tight_bbox: bool = False) -> Path:
    """Write the figure as PNG atomically (temporary file, then rename) and close it."""
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight" if tight_bbox else None)
    finally:
        plt.close(fig)
    return path
