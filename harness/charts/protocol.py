"""The protocol chart: what TLS and new connections cost, and HTTP/2 against HTTP/1.1.

``protocol_chart`` draws ``protocol.png`` from ``harness.results.protocol``: on the left the
server's CPU per request (µs) per target, grouped bars for ``health`` and each variant the run
has (TLS, a new connection per request, both), each bar labelled with its figure; on the right,
per scenario of the HTTP/2 user, the requests/s of every target at each users level, coloured by
the protocol the requests went over (HTTP/1.1 or h2), hatched when over TLS, the users level
above each bar, a red cross for a cell that did not finish. Generator-bound cells get a thick
black outline (they measure the generator: on the left the CPU per request still counts, on the
right the bar is the client's limit). Either panel is left out when the run has nothing for it;
the legends sit under the panels, so they never hide a bar.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.charts import common
from harness.charts.common import Colour
from harness.results.folder import Results
from harness.results.protocol import (
    BASELINE,
    H2,
    CostTable,
    H2Scenario,
    cost_table,
    h2_scenarios,
    link_kind,
)
from harness.results.rows import not_ok

PANEL_SIZE = (8.5, 7.0)
GENERATOR_EDGE = {"edgecolor": "black", "linewidth": 2.2}
PLAIN_EDGE = {"edgecolor": "white", "linewidth": 0.6}
PROTOCOL_COLOURS = {"http": "#4c72b0", H2: "#dd8452"}
PROTOCOL_NAMES = {"http": "HTTP/1.1", H2: "h2"}
TLS_HATCH = "//"
LABEL_SIZE = 7


def _kind_colours(kinds: list[tuple[bool, str]]) -> dict[tuple[bool, str], Colour]:
    palette = plt.get_cmap("Set2")
    return {kind: palette(index) for index, kind in enumerate(kinds)}


def _generator_handle() -> Patch:
    return Patch(facecolor="white", label=common.GENERATOR_LABEL, **GENERATOR_EDGE)  # type: ignore[arg-type]


def _legend_below(ax: Axes, handles: list[Artist]) -> None:
    """Under the target names, so it never hides a bar."""
    ax.legend(
        handles=handles,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=2,
        framealpha=0.9,
    )


def _cost_panel(ax: Axes, found: CostTable) -> None:
    rows = found.rows
    if rows["baseline"].any():  # a target without a plain baseline (a TLS row) is the table's:
        with_base = set(rows.loc[rows["baseline"], "target"])  # its scenarios share one kind
        rows = rows[rows["target"].isin(with_base)]
    targets = sorted(set(rows["target"]))
    base = [(False, "keep-alive")] if rows["baseline"].any() else []
    kinds = base + found.kinds
    colours = _kind_colours(kinds)
    width = 0.8 / len(kinds)
    for index, kind in enumerate(kinds):
        if kind in base:
            mine = rows[rows["baseline"]]
        else:
            mine = rows[~rows["baseline"] & rows["tls"].eq(kind[0])]
            mine = mine[mine["connection"].eq(kind[1])]
        for _, row in mine.iterrows():
            x = targets.index(row["target"]) - 0.4 + width * (index + 0.5)
            value = float(row["cpu_us"]) if row["cpu_us"] == row["cpu_us"] else 0.0
            edge = GENERATOR_EDGE if row["generator_bound"] else PLAIN_EDGE
            ax.bar(x, value, width * 0.95, color=colours[kind], **edge)  # type: ignore[arg-type]
            ax.annotate(
                f"{value:.0f}" if value >= 10 else f"{value:.1f}",
                (x, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=LABEL_SIZE,
            )
    names = [f"{BASELINE}: {link_kind(False, 'keep-alive')}"] if base else []
    names += [link_kind(*kind) for kind in found.kinds]
    handles: list[Artist] = [
        Patch(color=colours[k], label=n) for k, n in zip(kinds, names, strict=True)
    ]
    if rows["generator_bound"].any():
        handles.append(_generator_handle())
    levels = rows.groupby("target")["users"].first()
    labels = [f"{target}\n({levels[target]:g} users)" for target in targets]
    ax.set_xticks(range(len(targets)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("server CPU per request (µs)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    ax.grid(True, axis="y", alpha=0.35)
    _legend_below(ax, handles)
    ax.set_title(
        "What TLS and new connections cost: server CPU per request (µs)\n"
        "GET /health, FastHttpUser over HTTP/1.1; each target at the users level its "
        "scenarios share",
        fontsize=common.TITLE_SIZE,
    )


def _h2_panel(ax: Axes, scenario: H2Scenario) -> None:
    medians = scenario.medians.sort_values(["target", "users"])
    first = medians.groupby("target").first()

    def twins_together(target: str) -> tuple[str, bool, bool]:
        """A server's rows side by side: HTTP/1.1 first, then h2; plain before TLS."""
        stem = re.sub(r"-(h2c|h2|tls)$", "", target)
        return stem, bool(first.loc[target, "protocol"] == H2), bool(first.loc[target, "tls"])

    targets = sorted(set(medians["target"]), key=twins_together)
    levels = sorted(set(medians["users"]) | set(scenario.rows["users"].dropna().astype(float)))
    width = 0.8 / max(len(levels), 1)
    for _, row in medians.iterrows():
        index = levels.index(row["users"])
        x = targets.index(row["target"]) - 0.4 + width * (index + 0.5)
        protocol = H2 if row["protocol"] == H2 else "http"
        edge = GENERATOR_EDGE if row["generator_bound"] else PLAIN_EDGE
        ax.bar(
            x,
            float(row["rps"]),
            width * 0.95,
            color=PROTOCOL_COLOURS[protocol],
            hatch=TLS_HATCH if row["tls"] else None,
            **edge,  # type: ignore[arg-type]
        )
        ax.annotate(
            f"{row['users']:g}u",
            (x, float(row["rps"])),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=LABEL_SIZE,
        )
    handles: list[Artist] = [
        Patch(color=PROTOCOL_COLOURS[p], label=PROTOCOL_NAMES[p]) for p in PROTOCOL_COLOURS
    ]
    handles.append(Patch(facecolor="white", edgecolor="grey", hatch=TLS_HATCH, label="over TLS"))
    if medians["generator_bound"].any():
        handles.append(_generator_handle())
    failed = not_ok(scenario.rows).dropna(subset=["users"])
    failed = failed[failed["target"].isin(targets) & failed["users"].isin(levels)]
    for _, row in failed.iterrows():
        x = targets.index(row["target"]) - 0.4 + width * (levels.index(row["users"]) + 0.5)
        ax.plot(
            x, 0, linestyle="none", marker="x", markersize=9, markeredgewidth=2, color="red",
            clip_on=False, zorder=5,
        )  # fmt: skip
        ax.annotate(
            f"{row['users']:g}u {row['status']}",
            (x, 0),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=LABEL_SIZE,
            color="red",
        )
    if len(failed):
        handles.append(
            Line2D([], [], linestyle="none", marker="x", color="red", markeredgewidth=2,
                   label="failed or skipped cell (no data)")
        )  # fmt: skip
    ax.set_xticks(range(len(targets)), targets, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("throughput (requests/s)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    ax.grid(True, axis="y", alpha=0.35)
    _legend_below(ax, handles)
    streams = medians["streams"].dropna()
    per_user = f" × {float(np.median(streams)):g} streams" if len(streams) else ""
    ax.set_title(
        f"{scenario.name}: HTTP/2 against HTTP/1.1, same client (httpx)\n"
        f"requests/s per target; bar label: users (each{per_user} in flight)",
        fontsize=common.TITLE_SIZE,
    )


def protocol_chart(results: Results, path: Path) -> Path | None:
    """The cost panel and one panel per HTTP/2 scenario; None when the run has neither."""
    cost = cost_table(results)
    h2 = h2_scenarios(results)
    panels = (1 if cost is not None else 0) + len(h2)
    if panels == 0:
        return None
    fig, axes = plt.subplots(
        1, panels, figsize=(PANEL_SIZE[0] * panels, PANEL_SIZE[1]), squeeze=False
    )
    flat = list(axes.flat)
    if cost is not None:
        _cost_panel(flat.pop(0), cost)
    for ax, scenario in zip(flat, h2, strict=True):
        _h2_panel(ax, scenario)
    fig.suptitle(
        "Protocol: what TLS and new connections cost the server, and HTTP/2 against HTTP/1.1",
        fontsize=common.TITLE_SIZE + 1,
    )
    fig.tight_layout()
    return common.save(fig, path)
