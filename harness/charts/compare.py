"""The comparison chart of two runs (``comparison.png``): the throughput change of each group.

Drawn from a ``harness.results.compare.Comparison``; ``harness.report.compare`` writes it beside
comparison.csv and comparison.md. A group not judged for lack of trials still shows its change of
medians, as a hollow hatched bar labelled "not judged"; a group not compared at all
(generator-bound, untested) has no bar, only its verdict.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Patch

from harness.charts import common
from harness.format import fmt_change
from harness.results.compare import FASTER, NOT_ENOUGH_TRIALS, NOT_TESTED, SLOWER, Comparison

COLOURS = {FASTER: "#2a9d4b", SLOWER: "#d1362f", "other": "#9e9e9e"}
HATCH = "///"  # a change of medians that was not judged


def comparison_chart(comparison: Comparison, path: Path) -> Path:
    """One bar per matched group: its rps change in %, coloured by verdict, regressions outlined,
    groups not judged for lack of trials hollow and hatched, the ±threshold band shaded."""
    table, t = comparison.table, comparison.threshold_pct
    fig, ax = plt.subplots(figsize=(9.0, 0.42 * len(table) + 2.2), layout="constrained")
    ax.axvspan(-t, t, color="#e8e8e8", zorder=0)
    ax.axvline(0, color="black", linewidth=0.8)
    records = table.to_dict("records")
    for y, r in enumerate(reversed(records)):
        kind = str(r["verdict"]).split(";")[0]
        known = pd.notna(r["rps_change_pct"])
        unjudged = kind == NOT_ENOUGH_TRIALS and known
        comparable = bool(r["basis"]) and kind != NOT_TESTED and known
        change = float(r["rps_change_pct"]) if comparable or unjudged else 0.0
        colour = COLOURS.get(kind, COLOURS["other"])
        if unjudged:
            ax.barh(y, change, color="white", edgecolor=colour, hatch=HATCH, zorder=2)
        else:
            edge = "black" if r["regression"] else colour
            ax.barh(y, change, color=colour, edgecolor=edge, zorder=2)
        side = 1 if change >= 0 else -1
        text = fmt_change(change) if comparable else kind
        if unjudged:
            text = f"{fmt_change(change)} (not judged)"
        ax.annotate(text, (change, y), xytext=(4 * side, 0), textcoords="offset points",
                    va="center", ha="left" if side > 0 else "right", fontsize=8)  # fmt: skip
    labels = [f"{r['scenario']} · {r['target']} · {r['load']}" for r in reversed(records)]
    ax.set_yticks(range(len(records)), labels, fontsize=8)
    room = 1.8 if len(comparison.not_judged) else 1.3  # "(not judged)" labels are longer
    limit = max([t * 2, *(abs(v) * room for v in table["rps_change_pct"].dropna())])
    ax.set_xlim(-limit, limit)
    ax.set_xlabel("throughput change, B vs A (%)")
    ax.set_title(f"rps change: {comparison.run_b} vs {comparison.run_a}", fontsize=10)
    if not records:
        ax.text(0, 0.5, "no matched cells", ha="center", transform=ax.get_xaxis_transform())
    handles = [Patch(color=COLOURS[FASTER], label="significantly faster"),
               Patch(color=COLOURS[SLOWER], label="significantly slower"),
               Patch(color=COLOURS["other"], label="not significant / within threshold"),
               Patch(facecolor="white", edgecolor=COLOURS["other"], hatch=HATCH,
                     label="not judged: too few trials"),
               Patch(color="#e8e8e8", label=f"±{t:g}% threshold band"),
               Patch(facecolor="white", edgecolor="black", label="regression")]  # fmt: skip
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncol=3)
    return common.save(fig, path)
