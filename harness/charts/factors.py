"""The factors chart: what changing one thing about a stack does to its throughput.

``factors_chart`` draws ``<scenario>_factors.png`` from ``harness.results.factors.find_pairs``:
one horizontal bar per single-factor pair, b ÷ a throughput from 1× on a log axis (ticks 1×, 2×,
5×, 10×...; a ratio below 1 goes left from 1×), grouped and coloured by factor (interface,
framework, server, worker model: factor colours, never a target's), each with its ratio written
past its end. The axis is log whatever the spread: halving and doubling are the same distance.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.charts import common
from harness.charts.common import Colour
from harness.charts.paths import factors_chart_path
from harness.format import load_text, ratio_text
from harness.results.factors import FACTORS, find_pairs
from harness.results.folder import Results

GROUP_GAP = 0.6  # extra space between the bars of two factors
FACTOR_COLOURS: dict[str, Colour] = {
    factor: plt.get_cmap("Dark2")(index) for index, factor in enumerate(FACTORS)
}


def factors_chart(results: Results, scenario: str, load_model: str = "closed") -> Path | None:
    """Horizontal bars of b ÷ a throughput from 1× on a log axis, one per single-factor pair,
    grouped and coloured by factor; None when the scenario has no such pair."""
    found = find_pairs(results, scenario, load_model)
    if found.pairs.empty or found.level is None:
        return None
    pairs = found.pairs
    positions, y, previous = [], 0.0, None
    for factor in pairs["factor"]:
        y += GROUP_GAP if previous not in (None, factor) else 0.0
        positions.append(y)
        y, previous = y + 1.0, factor
    ratios = pairs["rps_ratio"].astype("float64").to_numpy()
    fig, ax = plt.subplots(figsize=(9.0, 1.9 + 0.55 * y))
    bars = ax.barh(
        positions,
        ratios - 1.0,
        left=1.0,
        height=0.7,
        color=[FACTOR_COLOURS[str(f)] for f in pairs["factor"]],
        edgecolor="black",
        linewidth=0.6,
    )
    ax.bar_label(bars, labels=[ratio_text(float(r)) for r in ratios], padding=3, fontsize=8)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.0)
    low, high = min(float(np.min(ratios)), 1.0), max(float(np.max(ratios)), 1.0)
    decades = math.log10(high / low)
    margin = 10 ** (0.3 + 0.2 * decades)  # room for the ratio written past each bar's end
    common.ratio_log_axis(ax, low / margin, high * margin, "x")
    labels = [f"{r['target_a']} → {r['target_b']}\n({r['differs']})" for _, r in pairs.iterrows()]
    ax.set_yticks(positions, labels=labels, fontsize=8)
    ax.set_ylim(y - 0.4, -0.6)  # the first pair on top
    ax.set_xlabel("throughput ratio b ÷ a (requests/s), log scale: above 1×, b served more")
    ax.grid(True, axis="x", which="major", alpha=0.35)
    handles: list[Artist] = [
        Patch(facecolor=FACTOR_COLOURS[f], edgecolor="black", label=f"only the {f} changes")
        for f in FACTORS
        if (pairs["factor"] == f).any()
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label="1×: the same throughput"))
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    left_out = len(found.skipped)
    note = "bars from 1×: b ÷ a"
    if left_out:
        note += f"; {left_out} pair{'s' if left_out > 1 else ''} left out"
        note += " (generator-bound or unfinished)"
    what = f"what one change does to throughput, at {load_text(load_model, found.level)}"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, factors_chart_path(results.run_dir, scenario, load_model))
