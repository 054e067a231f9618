"""Where a difference comes from: pairs of targets of a run that differ in exactly one thing.

"WSGI vs ASGI" mixes the interface, the server and the framework, and the worker model each
server runs. ``factor_pairs`` finds every pair of targets of a run that differs in exactly one
of those four factors and compares the two at the scenario's comparison level (chosen as the
headline findings choose it, ``harness.results.rows.comparison_level``); a pair with a
generator-bound or unfinished cell there is left out and named. ``factors_section`` writes the
pairs into report.md ("Where the difference comes from"), ``factors_chart`` draws
``charts/<scenario>_factors.png``. What a target is comes from the manifest's "targets" entries
(framework, server and interface fall back to summary.csv): this never imports the runner or
the target registry, so it works on a run folder copied from anywhere.

The pairing rules are ``classify``'s; ``EXPLANATION`` tells them to the report's reader.

Its few number formats are its own: ``harness.report.sections`` imports ``harness.charts.draw``,
which imports this module to draw its chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, NullFormatter

from harness.charts import common
from harness import schema
from harness.charts.common import LOAD_AXES, Colour, LoadAxis
from harness.results.rows import comparison_level, scenario_rows, trusted
from harness.results.folder import Results

FACTORS = ("interface", "framework", "server", "worker model")  # report order
STACK_FIELDS = ("framework", "server", "interface")
WORKER_FIELDS = ("worker_class", "workers", "threads", "concurrency")
COLUMNS = [
    "factor", "scenario", "load", "target_a", "target_b", "differs",
    "rps_a", "rps_b", "rps_ratio", "p99_a_ms", "p99_b_ms", "p99_ratio",
]  # fmt: skip
BLOCKED_LOOP = "blocked-loop"  # an event loop its handlers block: one request at a time
NO_FRAMEWORK = "none"  # a raw WSGI/ASGI app
# Per factor, the setting that makes a target side a of a pair: wsgi → asgi, a raw app → a
# framework, sync workers → another worker model.
BASELINES = {
    "interface": ("interface", "wsgi"),
    "framework": ("framework", NO_FRAMEWORK),
    "worker model": ("worker_class", "sync"),
}
MAX_LISTED = 3  # a factor with more pairs than this is told as a range in the sentence
FACTORS_CAPTION = "How much of the gap each single change explains"
FACTOR_COLOURS: dict[str, Colour] = {
    factor: plt.get_cmap("Dark2")(index) for index, factor in enumerate(FACTORS)
}
EXPLANATION = (
    '"WSGI vs ASGI" mixes three things: the interface, the server and the framework (and each '
    "server runs its own worker model). Each row changes one thing: **interface**: the same "
    "framework on the same server (the worker model follows the interface: threads for WSGI, "
    "an event loop for ASGI); **framework**: the same server, interface and worker model; "
    "**server**: the same framework, interface, workers, threads and concurrency (the worker "
    "class belongs to the server); **worker model**: the same framework, server and interface "
    "with another worker class, concurrency or worker count. Pairs that differ in more than one "
    "of these are not compared here. Ratios are b ÷ a at the load level of the headline "
    "findings (medians over trials): an rps ratio above 1 means b served more, a p99 ratio "
    "above 1 that b answered its slowest requests more slowly."
)


@dataclass(frozen=True)
class FactorPairs:
    """The single-factor pairs of one scenario and load model, and those left out."""

    scenario: str
    load_model: str
    level: float | None
    pairs: pd.DataFrame  # COLUMNS, interface pairs first, then framework, server, worker model
    skipped: list[str]  # "a → b: b generator-bound at 100 users"

    @property
    def where(self) -> str:
        """ "On io at 100 users" (the pairs' load level)."""
        axis = LOAD_AXES[self.load_model]
        name = self.scenario + (" (open load)" if self.load_model == "open" else "")
        return f"On {name}" + (
            "" if self.level is None else f" at {common.load_words(axis, self.level)}"
        )


def _value(settings: dict[str, Any], key: str) -> Any:
    """A setting for comparing: strings lower-cased, blank as None."""
    value = settings.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value.strip().lower() or None
    return value


def target_settings(results: Results) -> dict[str, dict[str, Any]]:
    """Each target's settings in the run's order (the manifest's, then summary-only targets),
    framework, server and interface from summary.csv where the manifest lacks them."""
    recorded = results.targets
    summary = results.summary
    names = list(recorded) + sorted(set(summary["target"].dropna().astype(str)) - set(recorded))
    settings: dict[str, dict[str, Any]] = {}
    for name in names:
        entry = dict(recorded.get(name) or {})
        rows = summary[summary["target"].eq(name).fillna(False)]
        for key in STACK_FIELDS:
            if _value(entry, key) is None and key in rows:
                values = rows[key].dropna()
                entry[key] = str(values.iloc[0]) if len(values) else None
        settings[name] = entry
    return settings


def classify(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The one factor two targets' settings differ in; None for none, several or unknown.

    interface     same framework, server and worker count; the worker model follows the
                  interface (blocking threads for WSGI, an event loop for ASGI)
    framework     same server, interface and worker model (WORKER_FIELDS)
    server        same framework, interface, workers, threads and concurrency (a worker
                  class belongs to its server: gunicorn "sync", granian "asgi")
    worker model  same framework, server and interface; any of WORKER_FIELDS differs
    A field missing from both targets' settings counts as the same.
    """
    if any(_value(s, key) is None for s in (a, b) for key in STACK_FIELDS):
        return None
    same = {key: _value(a, key) == _value(b, key) for key in (*STACK_FIELDS, *WORKER_FIELDS)}
    differ = [key for key in STACK_FIELDS if not same[key]]
    same_workers = all(same[key] for key in WORKER_FIELDS)
    if not differ:
        return None if same_workers else "worker model"
    if len(differ) > 1:
        return None
    factor = differ[0]
    if factor == "interface":
        return factor if same["workers"] else None
    if factor == "server":
        return factor if same["workers"] and same["threads"] and same["concurrency"] else None
    return factor if same_workers else None


def _ordered(
    factor: str, a: str, b: str, settings: dict[str, dict[str, Any]], order: dict[str, int]
) -> tuple[str, str]:
    """(a, b) so that b ÷ a reads naturally: the BASELINES side first, then fewer workers
    (worker model), then the run's target order."""
    field, baseline = BASELINES.get(factor, ("", None))

    def key(name: str) -> tuple[bool, int, int]:
        workers = _value(settings[name], "workers") if factor == "worker model" else 0
        count = int(workers) if isinstance(workers, int | float) else 0
        return (_value(settings[name], field) != baseline, count, order[name])

    first, second = sorted((a, b), key=key)
    return first, second


def _shown(value: Any) -> str:
    if value is None:
        return "?"
    return "no framework" if value == NO_FRAMEWORK else str(value)


def differs(factor: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    """What changes from a to b: "flask → django", "wsgi → asgi", "sync → gthread"."""

    def change(key: str, unit: str = "") -> str:
        return f"{_shown(_value(a, key))} → {_shown(_value(b, key))}{unit}"

    if factor != "worker model":
        return change(factor)
    parts = []
    for key in ("worker_class", "concurrency"):  # a worker class implies its concurrency
        if _value(a, key) != _value(b, key):
            parts.append(change(key))
            break
    else:
        if _value(a, "threads") != _value(b, "threads"):
            parts.append(change("threads", " threads"))
    if _value(a, "workers") != _value(b, "workers"):
        parts.append(change("workers", " workers"))
    return ", ".join(parts)


def _why_not(rows: pd.DataFrame, target: str, x: str, level: float, axis: LoadAxis) -> str:
    """Why a target has no figure at the level: "b generator-bound at 100 users"."""
    there = rows[rows["target"].eq(target).fillna(False) & rows[x].eq(level).fillna(False)]
    ok = common.ok_only(there)
    if there.empty:
        reason = "no cell"
    elif ok.empty:
        reason = "/".join(sorted(set(there["status"].fillna("unknown").astype(str))))
    elif common.generator_bound(ok).all():
        reason = "generator-bound"
    else:
        reason = "no throughput"
    return f"{target} {reason} at {common.load_words(axis, level)}"


def find_pairs(results: Results, scenario: str, load_model: str = "closed") -> FactorPairs:
    """Every single-factor pair of the scenario's targets at its comparison level.

    Figures are medians over the trusted trials (ok, not generator-bound) at that level; a pair
    whose target has none there, or served nothing, is left out and named in ``skipped``.
    """
    axis = LOAD_AXES[load_model]
    x = axis.column
    rows = scenario_rows(results, scenario, load_model)
    settings = target_settings(results)
    order = {name: index for index, name in enumerate(settings)}
    present = [name for name in settings if rows["target"].eq(name).any()]
    candidates = []
    for index, a in enumerate(present):
        for b in present[index + 1 :]:
            factor = classify(settings[a], settings[b])
            if factor is not None:
                candidates.append((factor, *_ordered(factor, a, b, settings, order)))
    candidates.sort(key=lambda c: (FACTORS.index(c[0]), order[c[1]], order[c[2]]))
    good = trusted(rows)
    level = comparison_level(good, x)
    if level is None:
        skipped = [f"{a} → {b}: no trusted cell" for _, a, b in candidates]
        return FactorPairs(scenario, load_model, None, pd.DataFrame(columns=COLUMNS), skipped)
    at = good[good[x].eq(level).fillna(False)]
    figures = {
        str(target): (float(row["rps"]), float(row["p99_ms"]))
        for target, row in at.groupby("target")[["rps", "p99_ms"]].median().iterrows()
    }
    records, skipped = [], []
    for factor, a, b in candidates:
        gone = [t for t in (a, b) if t not in figures or not figures[t][0] > 0]
        if gone:
            skipped.append(
                f"{a} → {b}: " + "; ".join(_why_not(rows, t, x, level, axis) for t in gone)
            )
            continue
        (rps_a, p99_a), (rps_b, p99_b) = figures[a], figures[b]
        p99_ratio = p99_b / p99_a if p99_a > 0 else math.nan
        change = differs(factor, settings[a], settings[b])
        ratios = [rps_a, rps_b, rps_b / rps_a, p99_a, p99_b, p99_ratio]
        records.append([factor, scenario, level, a, b, change, *ratios])
    pairs = pd.DataFrame(records, columns=COLUMNS)
    return FactorPairs(scenario, load_model, level, pairs, skipped)


def factor_pairs(results: Results, scenario: str, load_model: str = "closed") -> pd.DataFrame:
    """``find_pairs(...).pairs``: one row per single-factor pair (COLUMNS). ``attrs`` holds
    the "level" and the pairs "skipped" (generator-bound or unfinished cells there)."""
    found = find_pairs(results, scenario, load_model)
    frame = found.pairs.copy()
    frame.attrs.update(level=found.level, skipped=list(found.skipped))
    return frame


# ---- Words --------------------------------------------------------------------------------


def ratio_number(ratio: float) -> str:
    """A ratio: "1.05", "24.5", "1,234", small ones to 2 significant digits ("0.011")."""
    if math.isnan(ratio):
        return "–"
    if ratio >= 100:
        return f"{ratio:,.0f}"
    return f"{ratio:.1f}" if ratio >= 10 else f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def ratio_text(ratio: float) -> str:
    """A ratio with the times sign first, as a factor: "×3.1", "×1.05"."""
    return f"×{ratio_number(ratio)}"


def _number(value: float, ms: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2f}" if ms and abs(value) < 10 else f"{value:,.1f}"


def factor_sentence(found: FactorPairs) -> str:
    """One sentence over the factors: what changing only one thing did to throughput."""
    clauses: list[str] = []
    for factor in FACTORS:
        group = found.pairs[found.pairs["factor"] == factor]
        if group.empty:
            continue
        verb = "" if clauses else " changed throughput"
        if len(group) > MAX_LISTED:
            ranked = group.sort_values("rps_ratio")
            low, high = ranked.iloc[0], ranked.iloc[-1]
            items = (
                f"{verb} from {ratio_text(low['rps_ratio'])} ({low['target_a']} → "
                f"{low['target_b']}) to {ratio_text(high['rps_ratio'])} ({high['target_a']} → "
                f"{high['target_b']}) over {len(group)} pairs"
            )
        else:
            items = ", ".join(
                f"({row['target_a']} → {row['target_b']}){verb if i == 0 else ''} "
                f"{ratio_text(row['rps_ratio'])}"
                for i, (_, row) in enumerate(group.iterrows())
            )
            items = " " + items
        clauses.append(f"changing only the {factor}{items}")
    return f"{found.where}, " + "; ".join(clauses) + "."


def pitfall_sentences(results: Results, found: FactorPairs) -> list[str]:
    """For each target whose handlers block its event loop: what it served against what one
    request at a time per process allows (workers / service time)."""
    axis = LOAD_AXES[found.load_model]
    x = axis.column
    good = trusted(scenario_rows(results, found.scenario, found.load_model))
    lines = []
    for name, settings in target_settings(results).items():
        mine = good[good["target"].eq(name).fillna(False)].dropna(subset=[x])
        if _value(settings, "concurrency") != BLOCKED_LOOP or mine.empty:
            continue
        level = float(mine[x].max())  # its highest trusted load, unless it has the pairs' one
        if found.level is not None and mine[x].eq(found.level).any():
            level = found.level
        there = mine[mine[x] == level]
        rps = float(there["rps"].median())
        workers_value = _value(settings, "workers")
        workers = int(workers_value) if isinstance(workers_value, int | float) else 1
        who = "one process serves" if workers == 1 else f"each of its {workers} processes serves"
        where = "" if level == found.level else f" (at {common.load_words(axis, level)})"
        text = (
            f"{name} served {_number(rps)} rps{where}: the event loop is blocked by time.sleep, "
            f"so {who} one request at a time"
        )
        service = there["service_time_ms"].dropna()
        if len(service):
            service_ms = float(service.iloc[0])
            bound = workers / service_ms * 1000
            bound_text = f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:,.1f}"
            text += f", at most {workers} / {service_ms:g} ms = {bound_text} rps"
        lines.append(text + ".")
    return lines


def _table(found: FactorPairs) -> list[str]:
    header = ["factor", "a → b", "what differs", "rps a", "rps b", "rps ratio (b ÷ a)"]
    header += ["p99 ms a", "p99 ms b", "p99 ratio (b ÷ a)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for _, row in found.pairs.iterrows():
        cells = [row["factor"], f"{row['target_a']} → {row['target_b']}", row["differs"]]
        cells += [_number(row["rps_a"]), _number(row["rps_b"]), ratio_number(row["rps_ratio"])]
        cells += [_number(row["p99_a_ms"], ms=True), _number(row["p99_b_ms"], ms=True)]
        cells.append(ratio_number(row["p99_ratio"]))
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def factors_section(results: Results) -> list[str]:
    """ "Where the difference comes from": per scenario (and load model) with a single-factor
    pair, the sentence, the table and the chart; the blocked-event-loop pitfall in figures."""
    parts: list[str] = []
    summary = results.summary
    for scenario in results.scenario_names:
        for model in LOAD_AXES:
            if not (summary["scenario"].eq(scenario) & summary["load_model"].eq(model)).any():
                continue
            found = find_pairs(results, scenario, model)
            pitfalls = pitfall_sentences(results, found)
            if found.pairs.empty and not pitfalls:
                continue
            parts += [f"### {found.where.removeprefix('On ')}", ""]
            if not found.pairs.empty:
                parts += [factor_sentence(found), "", *_table(found), ""]
            if found.skipped and not found.pairs.empty:
                count = len(found.skipped)
                parts += [
                    f"Left out: {count} pair{'s' if count > 1 else ''} without a trusted cell "
                    f"there (generator-bound or unfinished): {'; '.join(found.skipped)}.",
                    "",
                ]
            parts += [f"**Pitfall:** {line}" for line in pitfalls] + ([""] if pitfalls else [])
            path = factors_chart_path(results.run_dir, scenario, model)
            if path.is_file():
                rel = path.relative_to(results.run_dir).as_posix()
                parts += [f"![{scenario} factors]({rel})", "", f"*{FACTORS_CAPTION}*", ""]
    if not parts:
        return []
    return ["## Where the difference comes from", "", EXPLANATION, "", *parts]


# ---- The chart -----------------------------------------------------------------------------

GROUP_GAP = 0.6  # extra space between the bars of two factors


def factors_chart_path(run_dir: Path | str, scenario: str, load_model: str = "closed") -> Path:
    """Where the single-change ratio chart of a scenario (and load model) goes."""
    axis = LOAD_AXES.get(load_model, LOAD_AXES["closed"])
    return Path(run_dir) / schema.CHARTS_DIR / f"{scenario}{axis.suffix}_factors.png"


def factors_chart(results: Results, scenario: str, load_model: str = "closed") -> Path | None:
    """Horizontal bars of b ÷ a throughput from 1.0 on a log axis, one per single-factor pair,
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
    ax.set_xscale("log")
    low, high = min(float(np.min(ratios)), 1.0), max(float(np.max(ratios)), 1.0)
    decades = math.log10(high / low)
    margin = 10 ** (0.3 + 0.2 * decades)  # room for the ratio written past each bar's end
    ax.set_xlim(low / margin, high * margin)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2 else (1.0,)))
    ax.xaxis.set_major_formatter(common.number_formatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    labels = [f"{r['target_a']} → {r['target_b']}\n({r['differs']})" for _, r in pairs.iterrows()]
    ax.set_yticks(positions, labels=labels, fontsize=8)
    ax.set_ylim(y - 0.4, -0.6)  # the first pair on top
    ax.set_xlabel("throughput ratio b ÷ a (requests/s), log scale: above 1, b served more")
    ax.grid(True, axis="x", which="major", alpha=0.35)
    handles: list[Artist] = [
        Patch(facecolor=FACTOR_COLOURS[f], edgecolor="black", label=f"only the {f} changes")
        for f in FACTORS
        if (pairs["factor"] == f).any()
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label="1.0: the same throughput"))
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)
    axis = LOAD_AXES[load_model]
    left_out = len(found.skipped)
    note = "bars from 1.0: b ÷ a"
    if left_out:
        note += f"; {left_out} pair{'s' if left_out > 1 else ''} left out"
        note += " (generator-bound or unfinished)"
    what = f"what one change does to throughput, at {common.load_words(axis, found.level)}"
    ax.set_title(common.title(results, scenario, what, note), fontsize=common.TITLE_SIZE)
    fig.tight_layout()
    return common.save(fig, factors_chart_path(results.run_dir, scenario, load_model))
