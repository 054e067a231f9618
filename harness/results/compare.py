"""Comparing two run folders: did throughput or tail latency change, and is the change real?

Cells are matched by (scenario, target, load_model, users, rate), trials ignored. For each
matched group the median rps and p99 of the ok trials are compared. A group is judged only when
both runs have at least ``MIN_TRIALS`` ok trials of it: Welch's t-test over the trials' rps, and
over their p99, says whether a difference is more than noise (basis ``BASIS_TRIALS``). With
fewer, the verdict is ``NOT_ENOUGH_TRIALS``, never a regression, and the p-values stay empty:
one trial measures no run-to-run noise, and the seconds of one window share that server's drift,
so they are not independent samples. Only when asked (``per_second=True``, the
``--per-second`` option) are such groups tested over the successful requests per second of the
cells' windows (basis ``BASIS_SECONDS``, optimistic p-values); their p99 is then "not tested".
A change counts when it is significant (p < ALPHA) *and* at least the threshold; a regression
is rps slower or p99 higher by that. Generator-bound cells measured locust, not the server, and
are not compared. Differences in machine, pinning, packages, scenario files or target settings
are listed as notes. This module owns the statistics and the verdicts (``compare_runs`` ->
``Comparison``); the chart is ``harness.charts.compare``'s, the files and the terminal table
``harness.report.compare``'s. It reads only the two folders, never the runner.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from harness.format import load_text
from harness.results.folder import Results, load, per_second
from harness.results.rows import generator_bound
from harness.results.trials import GROUP_KEYS

ALPHA = 0.05
DEFAULT_THRESHOLD_PCT = 5.0
MIN_SECONDS = 3  # per-second samples a side: below this after dropping edges, keep the edges
MIN_TRIALS = 2  # ok trials each run needs of a group for it to be judged
BASIS_TRIALS, BASIS_SECONDS = "trials", "per-second samples"
FASTER, SLOWER = "faster", "slower"
NO_CHANGE = "no significant change"
WITHIN = "no significant change (within threshold)"
GENERATOR_BOUND = "not comparable: generator-bound"
NOT_TESTED = "not tested: too few samples"
NOT_ENOUGH_TRIALS = "not enough trials to judge"
P99_NOT_TESTED = "p99 not tested"  # appended to an rps verdict whose p99 had no test
TABLE_COLUMNS = (
    "scenario", "target", "load_model", "load", "rps_a", "rps_b", "rps_change_pct",
    "rps_p_value", "basis", "p99_a_ms", "p99_b_ms", "p99_change_pct", "p99_p_value",
    "verdict", "regression",
)  # fmt: skip

Key = tuple[Any, ...]
SIDE_ITEMS = 4  # scenarios, targets or loads named per side in NoMatchedCells, then "+N more"


class NoMatchedCells(ValueError):
    """No (scenario, target, load) group of run A is in run B: there is nothing to compare."""


@dataclass
class Comparison:
    """The result of comparing run A (before) with run B (after)."""

    table: pd.DataFrame
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_a: str = "A"
    run_b: str = "B"
    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    per_second: bool = False  # groups short of trials were tested over per-second samples

    @property
    def regressions(self) -> pd.DataFrame:
        """Rows whose rps got slower, or p99 higher, significantly and beyond the threshold."""
        return self.table[self.table["regression"].astype(bool)]

    @property
    def not_judged(self) -> pd.DataFrame:
        """Rows not judged because a run had fewer than MIN_TRIALS ok trials of the group."""
        return self.table[self.table["verdict"].eq(NOT_ENOUGH_TRIALS)]


def _key(values: Any) -> Key:
    return tuple(None if pd.isna(v) else v for v in values)


def _load(model: Any, users: Any, rate: Any) -> str:
    """The load level of a group: "10 users", "200 requests/s offered"."""
    return load_text(str(model), rate if model == "open" else users)


def _label(key: Key) -> str:
    scenario, target, model, users, rate = key
    return f"{scenario} · {target} · {_load(model, users, rate)}"


def _groups(results: Results) -> dict[Key, pd.DataFrame]:
    ok = results.ok_rows()
    keys = list(GROUP_KEYS)
    return {_key(k): rows for k, rows in ok.groupby(keys, dropna=False, sort=False)}


def _pct(a: float | None, b: float | None) -> float:
    return (b - a) / a * 100.0 if a is not None and b is not None and a else math.nan


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; NaN with fewer than 2 values on a side.

    Two constant samples (no variance) give 1.0 when equal and 0.0 when not.
    """
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if len(set(a)) == 1 and len(set(b)) == 1:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p


def second_samples(results: Results, cell_ids: list[str]) -> tuple[list[float], bool]:
    """Successes in each second of the cells' windows, first and last seconds dropped.

    Returns the samples and whether the edges had to be kept (too short a window to drop them).
    """
    samples: list[float] = []
    kept_edges = False
    for cell_id in cell_ids:
        frame = per_second(results.run_dir, cell_id).dropna().sort_values("second")
        values = [float(v) for v in frame["successes"]]
        if len(values) - 2 >= MIN_SECONDS:
            values = values[1:-1]
        else:
            kept_edges = kept_edges or bool(values)
        samples += values
    return samples, kept_edges


def _median(rows: pd.DataFrame, column: str) -> float | None:
    values = rows[column].dropna()
    return float(values.median()) if len(values) else None


def _values(rows: pd.DataFrame, column: str) -> list[float]:
    return [float(v) for v in rows[column].dropna()]


def _verdict(change: float, p: float, threshold: float) -> str:
    if math.isnan(p) or math.isnan(change):
        return NOT_TESTED
    if p >= ALPHA:
        return NO_CHANGE
    if abs(change) < threshold:
        return WITHIN
    return FASTER if change > 0 else SLOWER


def _compare_group(
    key: Key,
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    ra: Results,
    rb: Results,
    t: float,
    per_second: bool = False,
) -> tuple[dict[str, Any], bool]:
    """One table row for a matched group, and whether per-second edges had to be kept.

    Judged over trials when both sides have MIN_TRIALS ok trials; otherwise NOT_ENOUGH_TRIALS,
    unless ``per_second`` asks for the test over per-second samples (p99 then not tested).
    """
    scenario, target, model, users, rate = key
    row: dict[str, Any] = {
        "scenario": scenario, "target": target, "load_model": model,
        "load": _load(model, users, rate),
        "rps_a": _median(rows_a, "rps"), "rps_b": _median(rows_b, "rps"),
        "p99_a_ms": _median(rows_a, "p99_ms"), "p99_b_ms": _median(rows_b, "p99_ms"),
        "rps_p_value": math.nan, "p99_p_value": math.nan, "basis": "", "regression": False,
    }  # fmt: skip
    row["rps_change_pct"] = _pct(row["rps_a"], row["rps_b"])
    row["p99_change_pct"] = _pct(row["p99_a_ms"], row["p99_b_ms"])
    if generator_bound(rows_a).any() or generator_bound(rows_b).any():
        row["verdict"] = GENERATOR_BOUND
        return row, False
    kept = False
    rps_a, rps_b = _values(rows_a, "rps"), _values(rows_b, "rps")
    if len(rps_a) >= MIN_TRIALS and len(rps_b) >= MIN_TRIALS:
        row["basis"] = BASIS_TRIALS
        row["rps_p_value"] = welch_p(rps_a, rps_b)
        row["p99_p_value"] = welch_p(_values(rows_a, "p99_ms"), _values(rows_b, "p99_ms"))
    elif not per_second:
        row["verdict"] = NOT_ENOUGH_TRIALS
        return row, False
    else:
        row["basis"] = BASIS_SECONDS
        samples_a, kept_a = second_samples(ra, [str(c) for c in rows_a["cell_id"].dropna()])
        samples_b, kept_b = second_samples(rb, [str(c) for c in rows_b["cell_id"].dropna()])
        row["rps_p_value"] = welch_p(samples_a, samples_b)
        kept = kept_a or kept_b
    row["verdict"] = _verdict(row["rps_change_pct"], row["rps_p_value"], t)
    p99 = _verdict(row["p99_change_pct"], row["p99_p_value"], t)
    if p99 == FASTER:  # latency went up
        row["verdict"] += "; p99 higher"
    elif p99 == SLOWER:
        row["verdict"] += "; p99 lower"
    elif p99 == NOT_TESTED:
        row["verdict"] += f"; {P99_NOT_TESTED}"
    row["regression"] = row["verdict"].startswith(SLOWER) or p99 == FASTER
    return row, kept


def _differ(label: str, a: Any, b: Any) -> list[str]:
    if a == b:
        return []
    return [f"{label}: A {'(none)' if a is None else a} vs B {'(none)' if b is None else b}"]


def _section(results: Results, name: str) -> dict[str, Any]:
    value = results.manifest.get(name)
    return value if isinstance(value, dict) else {}


def run_notes(ra: Results, rb: Results, keys: list[Key]) -> list[str]:
    """Differences between the runs that could explain (or fake) a change."""
    notes: list[str] = []
    for section, fields in (
        ("machine", ("cpu_model", "cpu_count", "python")),
        ("pinning", ("server_cpus", "generator_cpus", "applied")),
        ("git", ("sha", "dirty")),
    ):
        a, b = _section(ra, section), _section(rb, section)
        for name in fields:
            notes += _differ(f"{section} {name}", a.get(name), b.get(name))
    packages_a, packages_b = _section(ra, "packages"), _section(rb, "packages")
    for name in sorted(set(packages_a) | set(packages_b)):
        notes += _differ(f"package {name}", packages_a.get(name), packages_b.get(name))
    scenarios_a, scenarios_b = _section(ra, "scenarios"), _section(rb, "scenarios")
    for name in sorted({str(k[0]) for k in keys}):
        sha_a, sha_b = ((s.get(name) or {}).get("sha256") for s in (scenarios_a, scenarios_b))
        notes += _differ(f"scenario {name} file changed, sha256", sha_a, sha_b)
    for target in sorted({str(k[1]) for k in keys}):
        a, b = ra.targets.get(target) or {}, rb.targets.get(target) or {}
        for name in ("worker_class", "workers", "threads", "slots"):
            notes += _differ(f"target {target} {name}", a.get(name), b.get(name))
    durations = [sorted(set(r.summary["duration_s"].dropna())) for r in (ra, rb)]
    notes += _differ("measured seconds per cell", *durations)
    return notes


def _names(values: list[str]) -> str:
    names = list(dict.fromkeys(values))
    more = f" +{len(names) - SIDE_ITEMS} more" if len(names) > SIDE_ITEMS else ""
    return ",".join(names[:SIDE_ITEMS]) + more


def side_text(results: Results, keys: list[Key]) -> str:
    """What one run holds, briefly: "run-id: io,cpu × flask-gunicorn-sync × 10 users,50 users"."""
    if not keys:
        return f"{results.run_id}: no ok cell"
    parts = (
        _names([str(k[0]) for k in keys]),
        _names([str(k[1]) for k in keys]),
        _names([_load(k[2], k[3], k[4]) for k in keys]),
    )
    return f"{results.run_id}: {' × '.join(parts)}"


def compare_runs(
    run_a: Path,
    run_b: Path,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    per_second: bool = False,
) -> Comparison:
    """Compare run A (before) with run B (after); ValueError naming a folder that is not a run,
    NoMatchedCells (a ValueError) when no group of A is in B.

    ``per_second`` tests the groups that lack trials over per-second samples instead of
    leaving them NOT_ENOUGH_TRIALS.
    """
    ra, rb = load(run_a), load(run_b)
    groups_a, groups_b = _groups(ra), _groups(rb)
    matched = [k for k in groups_a if k in groups_b]
    if not matched:
        raise NoMatchedCells(
            f"no cell of A matched a cell of B (same scenario, target and load), nothing to "
            f"compare; A {side_text(ra, list(groups_a))}; B {side_text(rb, list(groups_b))}"
        )
    unmatched = [f"only in A: {_label(k)}" for k in groups_a if k not in groups_b]
    unmatched += [f"only in B: {_label(k)}" for k in groups_b if k not in groups_a]
    rows, kept_edges = [], False
    for key in matched:
        row, kept = _compare_group(
            key, groups_a[key], groups_b[key], ra, rb, threshold_pct, per_second
        )
        rows.append(row)
        kept_edges = kept_edges or kept
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["regression"] = table["regression"].astype(bool)
    notes = run_notes(ra, rb, matched)
    if kept_edges:
        notes.append(
            f"some windows were too short to drop their first and last seconds and keep "
            f"{MIN_SECONDS} per-second samples: the edges were kept"
        )
    return Comparison(table, unmatched, notes, ra.run_id, rb.run_id, threshold_pct, per_second)
