"""Real I/O: the scenarios that wait on a real database or a real upstream HTTP service.

A scenario is real-I/O when its manifest entry (``Scenario.to_dict``) says it ``needs`` a
database or an upstream service (``harness.results.summary.scenario_needs``). Its cells go through
the target's connection pool, so their bound includes the pool (``pool_total``: workers x pool
per process), and the database runs on the server's CPUs (``database_cpu_pct``). This module
picks those scenarios, the load level to compare them at, and their medians per target; the
chart is ``harness.charts.real_io``'s, the words ``harness.report.real_io``'.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.results.folder import Results
from harness.results.rows import LOAD_AXES, LoadAxis, comparison_level, ok_only, trusted
from harness.results.summary import scenario_needs

# What a request of each kind of real-I/O scenario does, in words.
NEEDS_TEXT = {
    "database": "a real query to PostgreSQL through the target's connection pool",
    "upstream": "a real HTTP call to an upstream service through the target's client pool",
}
FIGURES = ["rps", "p99_ms", "bound_rps", "efficiency", "database_cpu_pct", "upstream_cpu_pct"]
FIGURES += ["server_cpu_pct", "pool_total"]


@dataclass(frozen=True)
class RealIoScenario:
    """A real-I/O scenario of the run: what it needs and the load axis it is compared on."""

    name: str
    needs: str  # "database" or "upstream"
    axis: LoadAxis
    rows: pd.DataFrame  # every summary row of the scenario under that load model


def needs_of(results: Results, scenario: str) -> str | None:
    """ "database", "upstream" or None, as the manifest's scenario entry declares."""
    return scenario_needs((results.manifest.get("scenarios") or {}).get(scenario))


def real_io_scenarios(results: Results) -> list[RealIoScenario]:
    """The run's real-I/O scenarios with ok cells, in run order (closed load when it has any)."""
    found = []
    for name in results.scenario_names:
        needs = needs_of(results, name)
        if needs is None:
            continue
        for model in results.load_models(name):
            rows = results.scenario_rows(name, model)
            if not ok_only(rows).empty:
                found.append(RealIoScenario(name, needs, LOAD_AXES[model], rows))
                break
    return found


def common_level(scenario: RealIoScenario) -> float | None:
    """The load level its table shows: the one the headline findings would compare at."""
    level = comparison_level(trusted(scenario.rows), scenario.axis.column)
    if level is None:
        level = comparison_level(ok_only(scenario.rows), scenario.axis.column)
    return level


def level_medians(scenario: RealIoScenario, level: float) -> pd.DataFrame:
    """One row per target at that level: the median over trials of FIGURES, with the limiter
    and its words from the first trial."""
    ok = ok_only(scenario.rows)
    at = ok[ok[scenario.axis.column].astype("float64") == level]
    if at.empty:
        return pd.DataFrame(columns=["target", *FIGURES, "limiter", "limited_by"])
    frame = at[["target", *FIGURES]].copy()
    for column in FIGURES:
        frame[column] = frame[column].astype("float64")
    medians = frame.groupby("target", as_index=False)[FIGURES].median()
    words = at.groupby("target", as_index=False)[["limiter", "limited_by"]].first()
    return medians.merge(words, on="target").sort_values("target").reset_index(drop=True)
