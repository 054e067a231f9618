"""The overview chart across scenarios: how many times the WSGI throughput ASGI serves.

One group of bars per scenario (and load model), one bar per ASGI/WSGI pair of targets, at the
scenario's comparison level (``harness.results.ratios``: the highest load every target
completed, generator-bound cells left out), labelled with its value ("45.7×"). Bars are ratios,
not targets, so no target colour: a grey per WSGI target, a hatch per ASGI target, the legend
titled "ASGI ÷ WSGI". A dashed line marks 1× (the same throughput); past a 20× spread the axis
is log (ticks 1×, 2×, 5×, 10×...) and the bars grow from 1×. More pairs than MAX_BAR_PAIRS
make a heatmap per scenario instead.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.colors import TwoSlopeNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.charts import common
from harness.charts.common import Colour
from harness.format import load_text, ratio_times
from harness.results.folder import Results
from harness.results.ratios import RatioSet, asgi_wsgi_ratios

HATCHES = ("//", "..", "xx", "\\\\", "++")  # per ASGI target
# Per WSGI target: greys, away from tab10's mid grey (0.5), so no bar looks like a target.
RATIO_SHADES = ("0.88", "0.66", "0.8", "0.58", "0.94", "0.72")
REFERENCE_LABEL = "1×: the same throughput"
MAX_BAR_PAIRS = 8  # more ASGI/WSGI pairs than this read better as a heatmap
MAX_SKIPPED_NAMED = 3  # the subtitle names this many left-out cells, then counts the rest


def ratio_sets(results: Results) -> list[RatioSet]:
    """Per scenario and load model that has cells: its ASGI/WSGI ratios (maybe none)."""
    return [
        asgi_wsgi_ratios(results, scenario, model)
        for scenario in results.scenario_names
        for model in results.load_models(scenario)
    ]


def _group_label(ratio_set: RatioSet) -> str:
    name = ratio_set.scenario + (" (open)" if ratio_set.load_model == "open" else "")
    level = 0.0 if ratio_set.level is None else ratio_set.level
    return f"{name}\nat {load_text(ratio_set.load_model, level).replace('requests/s', 'req/s')}"


def _skipped_note(sets: list[RatioSet]) -> str:
    skipped = [f"{s.scenario} {cell}" for s in sets for cell in s.skipped]
    if not skipped:
        return "each scenario at the highest load every target completed"
    named = ", ".join(skipped[:MAX_SKIPPED_NAMED])
    more = len(skipped) - MAX_SKIPPED_NAMED
    named += f" and {more} more" if more > 0 else ""
    return f"generator-bound cells skipped (they measure the load generator): {named}"


def pair_styles(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(ASGI, WSGI) pair -> (face colour, hatch) of its bars: a grey keyed by the WSGI target,
    a hatch keyed by the ASGI target. No target colour: a ratio is not a target."""
    asgi_names = sorted({asgi for asgi, _ in pairs})
    wsgi_names = sorted({wsgi for _, wsgi in pairs})
    return {
        (asgi, wsgi): (
            RATIO_SHADES[wsgi_names.index(wsgi) % len(RATIO_SHADES)],
            HATCHES[asgi_names.index(asgi) % len(HATCHES)],
        )
        for asgi, wsgi in pairs
    }


def ratio_chart(results: Results, colours: dict[str, Colour], path: Path) -> Path | None:
    """Grouped bars of ASGI rps / WSGI rps per scenario; None without an ASGI/WSGI pair.

    When the ratios span more than ``common.LOG_RATIO`` the axis is log and the bars grow from
    1× (a ratio below 1 goes down from it); else it is linear and they grow from 0. ``colours``
    (the targets') are not used for bars: they are ratios, drawn in greys."""
    every = ratio_sets(results)
    sets = [s for s in every if s.ratios]
    if not sets:
        return None
    pairs = sorted({(r.asgi, r.wsgi) for s in sets for r in s.ratios})
    if len(pairs) > MAX_BAR_PAIRS:
        return _heatmap_chart(sets, every, path)
    styles = pair_styles(pairs)
    values = [r.ratio for s in sets for r in s.ratios]
    log = common.wide_ratios(values)
    base = 1.0 if log else 0.0
    width = min(0.8 / len(pairs), 0.3)  # a lone pair still looks like a bar, not a wall
    # Wide enough per group that the value labels of neighbouring bars do not run together.
    fig, ax = plt.subplots(figsize=(max(8.0, 1.2 + 1.3 * len(sets) * max(1, len(pairs) / 2)), 5.0))
    for group, ratio_set in enumerate(sets):
        for ratio in ratio_set.ratios:
            index = pairs.index((ratio.asgi, ratio.wsgi))
            x = group + width * (index - (len(pairs) - 1) / 2)
            face, hatch = styles[(ratio.asgi, ratio.wsgi)]
            bars = ax.bar(
                x,
                ratio.ratio - base,
                bottom=base,
                width=width * 0.92,
                color=face,
                edgecolor="black",
                linewidth=0.6,
                hatch=hatch,
            )
            ax.bar_label(bars, labels=[ratio_times(ratio.ratio)], padding=2, fontsize=8)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1.0)
    ax.set_xticks(range(len(sets)))
    ax.set_xticklabels([_group_label(s) for s in sets], fontsize=9)
    ax.set_xlim(-0.6, len(sets) - 0.4)
    low, high = min(min(values), 1.0), max(max(values), 1.0)
    if log:  # room below the lowest bar, and above the highest for its label
        common.ratio_log_axis(ax, low / 1.5, high * 2.2)
    else:
        ax.set_ylim(0, high * 1.15)
        ax.yaxis.set_major_formatter(common.times_formatter())
    scale = "log scale" if log else "linear scale"
    ax.set_ylabel(f"throughput ratio: ASGI req/s ÷ WSGI req/s ({scale})")
    ax.grid(True, axis="y", which="major", alpha=0.35)
    handles: list[Artist] = [
        Patch(
            facecolor=styles[pair][0],
            edgecolor="black",
            hatch=styles[pair][1],
            label=f"{pair[0]} ÷ {pair[1]}",
        )
        for pair in pairs
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label=REFERENCE_LABEL))
    ax.legend(
        handles=handles,
        title="ASGI ÷ WSGI",
        title_fontsize=8,
        fontsize=8,
        loc="upper right",
        framealpha=0.9,
    )
    note = _skipped_note(every)
    title = "ASGI vs WSGI: throughput ratio by scenario (above 1×: ASGI served more)"
    ax.set_title(f"{title}\n{note}", fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, path, tight_bbox=True)  # a long list of skipped cells stays whole


def _heatmap_chart(sets: list[RatioSet], every: list[RatioSet], path: Path) -> Path:
    """Many targets: one heatmap per scenario, ASGI targets as rows, WSGI targets as columns."""
    fig, axes = plt.subplots(1, len(sets), figsize=(max(8.0, 5.5 * len(sets)), 6.5), squeeze=False)
    norm = TwoSlopeNorm(vmin=-2.0, vcenter=0.0, vmax=2.0)  # log10 of the ratio: 1/100 .. 100
    image = None
    for ax, ratio_set in zip(axes[0], sets, strict=True):
        asgi = sorted({r.asgi for r in ratio_set.ratios})
        wsgi = sorted({r.wsgi for r in ratio_set.ratios})
        grid = np.full((len(asgi), len(wsgi)), np.nan)
        for ratio in ratio_set.ratios:
            grid[asgi.index(ratio.asgi), wsgi.index(ratio.wsgi)] = ratio.ratio
        shown = np.log10(np.clip(grid, 1e-2, 1e2))
        image = ax.imshow(shown, cmap="RdBu", norm=norm, aspect="auto")
        for (row, column), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(column, row, ratio_times(value), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(wsgi)), wsgi, rotation=35, ha="right", fontsize=8)
        first = ax is axes[0][0]
        ax.set_yticks(range(len(asgi)), asgi if first else [""] * len(asgi), fontsize=8)
        ax.set_title(_group_label(ratio_set).replace("\n", " "), fontsize=common.TITLE_SIZE)
        ax.set_xlabel("WSGI target")
    axes[0][0].set_ylabel("ASGI target")
    if image is not None:
        bar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
        bar.set_ticks([-2, -1, 0, 1, 2], labels=["1/100", "1/10", "1", "10", "100"])
        bar.set_label("ASGI requests/s ÷ WSGI requests/s (blue: ASGI served more)")
    title = "ASGI vs WSGI: throughput ratio of every pair (above 1: ASGI served more)"
    fig.suptitle(f"{title}\n{_skipped_note(every)}", fontsize=common.TITLE_SIZE)
    return common.save(fig, path, tight_bbox=True)  # long target names on both axes
