"""Where a difference comes from: pairs of targets of a run that differ in exactly one thing.

"WSGI vs ASGI" mixes the interface, the server and the framework, and the worker model each
server runs. ``find_pairs`` finds every pair of targets of a run that differs in exactly one
of those four factors (the rules are ``classify``'s) and compares the two at the scenario's
comparison level (chosen as the headline findings choose it,
``harness.results.rows.comparison_level``); a pair with a generator-bound or unfinished cell
there is left out and named. ``blocked_loops`` gives the figures of each target whose handlers
block its event loop. What a target is comes from ``harness.results.targets``. The chart of the
pairs is ``harness.charts.factors``'s, their words ``harness.report.factors``'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.format import load_text
from harness.results.folder import Results
from harness.results.rows import (
    LOAD_AXES,
    comparison_level,
    generator_bound,
    ok_only,
    trusted,
)
from harness.results.targets import STACK_FIELDS, setting, target_settings

FACTORS = ("interface", "framework", "server", "worker model", "http", "tls")  # report order
WORKER_FIELDS = ("worker_class", "workers", "threads", "concurrency")
# The protocol layer: the HTTP version a target's row speaks and whether it serves TLS. A
# manifest from before them has neither: HTTP/1.1 without TLS.
PROTOCOL_FIELDS = {"http": "1.1", "tls": False}
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
    "http": ("http", "1.1"),
    "tls": ("tls", False),
}


@dataclass(frozen=True)
class FactorPairs:
    """The single-factor pairs of one scenario and load model, and those left out."""

    scenario: str
    load_model: str
    level: float | None
    pairs: pd.DataFrame  # COLUMNS, interface pairs first, then framework, server, worker model
    skipped: list[str]  # "a → b: b generator-bound at 100 users"


@dataclass(frozen=True)
class BlockedLoop:
    """What a target whose handlers block its event loop served, and what that allows."""

    target: str
    level: float  # the pairs' level when it has cells there, else its highest trusted one
    rps: float  # median over trusted trials at that level
    workers: int  # processes, each serving one request at a time
    service_time_ms: float | None

    @property
    def bound_rps(self) -> float | None:
        """One request at a time per process: workers / service time."""
        if self.service_time_ms is None:
            return None
        return self.workers / self.service_time_ms * 1000


def classify(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The one factor two targets' settings differ in; None for none, several or unknown.

    interface     same framework, server and worker count; the worker model follows the
                  interface (blocking threads for WSGI, an event loop for ASGI)
    framework     same server, interface and worker model (WORKER_FIELDS)
    server        same framework, interface, workers, threads and concurrency (a worker
                  class belongs to its server: gunicorn "sync", granian "asgi")
    worker model  same framework, server and interface; any of WORKER_FIELDS differs
    http, tls     everything above the same; only the row's HTTP version (1.1 → 2), or only
                  whether it serves TLS, differs (PROTOCOL_FIELDS)
    A field missing from both targets' settings counts as the same.
    """
    if any(setting(s, key) is None for s in (a, b) for key in STACK_FIELDS):
        return None
    same = {key: setting(a, key) == setting(b, key) for key in (*STACK_FIELDS, *WORKER_FIELDS)}
    differ = [key for key in STACK_FIELDS if not same[key]]
    same_workers = all(same[key] for key in WORKER_FIELDS)
    protocol = [key for key in PROTOCOL_FIELDS if _protocol(a, key) != _protocol(b, key)]
    if protocol:
        return protocol[0] if len(protocol) == 1 and not differ and same_workers else None
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


def _protocol(settings: dict[str, Any], key: str) -> Any:
    value = setting(settings, key)
    return PROTOCOL_FIELDS[key] if value is None else value


def _ordered(
    factor: str, a: str, b: str, settings: dict[str, dict[str, Any]], order: dict[str, int]
) -> tuple[str, str]:
    """(a, b) so that b ÷ a reads naturally: the BASELINES side first, then fewer workers
    (worker model), then the run's target order."""
    field, baseline = BASELINES.get(factor, ("", None))

    def key(name: str) -> tuple[bool, int, int]:
        workers = setting(settings[name], "workers") if factor == "worker model" else 0
        count = int(workers) if isinstance(workers, int | float) else 0
        read = _protocol if field in PROTOCOL_FIELDS else setting
        return (read(settings[name], field) != baseline, count, order[name])

    first, second = sorted((a, b), key=key)
    return first, second


def _shown(value: Any) -> str:
    if value is None:
        return "?"
    return "no framework" if value == NO_FRAMEWORK else str(value)


def differs(factor: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    """What changes from a to b: "flask → django", "wsgi → asgi", "sync → gthread"."""

    def change(key: str, unit: str = "") -> str:
        return f"{_shown(setting(a, key))} → {_shown(setting(b, key))}{unit}"

    if factor == "http":
        return f"HTTP/{_protocol(a, 'http')} → HTTP/{_protocol(b, 'http')}"
    if factor == "tls":
        shown = {True: "TLS", False: "plain TCP"}
        return f"{shown[bool(_protocol(a, 'tls'))]} → {shown[bool(_protocol(b, 'tls'))]}"
    if factor != "worker model":
        return change(factor)
    parts = []
    for key in ("worker_class", "concurrency"):  # a worker class implies its concurrency
        if setting(a, key) != setting(b, key):
            parts.append(change(key))
            break
    else:
        if setting(a, "threads") != setting(b, "threads"):
            parts.append(change("threads", " threads"))
    if setting(a, "workers") != setting(b, "workers"):
        parts.append(change("workers", " workers"))
    return ", ".join(parts)


def _why_not(rows: pd.DataFrame, target: str, load_model: str, level: float) -> str:
    """Why a target has no figure at the level: "b generator-bound at 100 users"."""
    x = LOAD_AXES[load_model].column
    there = rows[rows["target"].eq(target).fillna(False) & rows[x].eq(level).fillna(False)]
    ok = ok_only(there)
    if there.empty:
        reason = "no cell"
    elif ok.empty:
        reason = "/".join(sorted(set(there["status"].fillna("unknown").astype(str))))
    elif generator_bound(ok).all():
        reason = "generator-bound"
    else:
        reason = "no throughput"
    return f"{target} {reason} at {load_text(load_model, level)}"


def find_pairs(results: Results, scenario: str, load_model: str = "closed") -> FactorPairs:
    """Every single-factor pair of the scenario's targets at its comparison level.

    Figures are medians over the trusted trials (ok, not generator-bound) at that level; a pair
    whose target has none there, or served nothing, is left out and named in ``skipped``.
    """
    x = LOAD_AXES[load_model].column
    rows = results.scenario_rows(scenario, load_model)
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
                f"{a} → {b}: " + "; ".join(_why_not(rows, t, load_model, level) for t in gone)
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


def blocked_loops(results: Results, found: FactorPairs) -> list[BlockedLoop]:
    """Each target of the scenario whose handlers block its event loop, with trusted cells."""
    x = LOAD_AXES[found.load_model].column
    good = trusted(results.scenario_rows(found.scenario, found.load_model))
    blocked = []
    for name, settings in target_settings(results).items():
        mine = good[good["target"].eq(name).fillna(False)].dropna(subset=[x])
        if setting(settings, "concurrency") != BLOCKED_LOOP or mine.empty:
            continue
        level = float(mine[x].max())  # its highest trusted load, unless it has the pairs' one
        if found.level is not None and mine[x].eq(found.level).any():
            level = found.level
        there = mine[mine[x] == level]
        workers = setting(settings, "workers")
        service = there["service_time_ms"].dropna()
        blocked.append(
            BlockedLoop(
                target=name,
                level=level,
                rps=float(there["rps"].median()),
                workers=int(workers) if isinstance(workers, int | float) else 1,
                service_time_ms=float(service.iloc[0]) if len(service) else None,
            )
        )
    return blocked
