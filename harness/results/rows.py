"""Which cells a comparison looks at: the load level to compare at, and ASGI/WSGI ratios.

The report's headline findings and the charts that show one load level (latency distribution,
throughput over time, the ASGI/WSGI overview) must agree on that level, so it is chosen here
once: among the trusted ok cells (generator-bound cells measure the load generator), the level
the most targets completed, the highest of those. A target's interface (ASGI or WSGI) comes
from the manifest's "targets" entries, falling back to summary.csv.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.charts.common import LOAD_AXES, generator_bound, ok_only
from harness.results.folder import Results


def scenario_rows(results: Results, scenario: str, load_model: str) -> pd.DataFrame:
    """Every summary row (any status) of one scenario under one load model."""
    summary = results.summary
    return summary[
        summary["scenario"].eq(scenario).fillna(False)
        & summary["load_model"].eq(load_model).fillna(False)
    ]


def trusted(rows: pd.DataFrame) -> pd.DataFrame:
    """Ok rows with a throughput that did not measure the load generator."""
    ok = ok_only(rows).dropna(subset=["rps"])
    return ok[~generator_bound(ok)]


def comparison_level(rows: pd.DataFrame, x: str) -> float | None:
    """The load level to compare targets at: most targets covered, then the highest.

    ``rows`` are the candidate cells (usually ``trusted``); None when none has a load level.
    """
    known = rows.dropna(subset=[x])
    if known.empty:
        return None
    coverage = known.groupby(x)["target"].nunique()
    return float(max(coverage.index, key=lambda value: (coverage[value], value)))


def chart_level(rows: pd.DataFrame, x: str) -> float | None:
    """The level for one-level charts: as the headline chooses, or among all ok cells when
    every ok cell was generator-bound (a chart of them still shows what happened)."""
    level = comparison_level(trusted(rows), x)
    return level if level is not None else comparison_level(ok_only(rows), x)


def interface_of(results: Results, target: str) -> str:
    """ "asgi", "wsgi" or "" for a target, from the manifest (else summary.csv)."""
    recorded = (results.targets.get(target) or {}).get("interface")
    if not recorded:
        column = results.summary.loc[results.summary["target"].eq(target).fillna(False)]
        values = column["interface"].dropna()
        recorded = values.iloc[0] if len(values) else ""
    return str(recorded).lower()


@dataclass(frozen=True)
class Ratio:
    """Throughput of one ASGI target over one WSGI target, both at the same load level."""

    scenario: str
    load_model: str
    level: float
    asgi: str
    wsgi: str
    asgi_rps: float
    wsgi_rps: float

    @property
    def ratio(self) -> float:
        return self.asgi_rps / self.wsgi_rps


@dataclass(frozen=True)
class RatioSet:
    """The ratios of one scenario and load model, and the generator-bound cells left out."""

    scenario: str
    load_model: str
    level: float | None
    ratios: list[Ratio]
    skipped: list[str]  # "fastapi-uvicorn at 200 users"


def asgi_wsgi_ratios(results: Results, scenario: str, load_model: str = "closed") -> RatioSet:
    """Every ASGI/WSGI pair's throughput ratio at the scenario's comparison level.

    Medians over trials; generator-bound cells are left out (and named in ``skipped``).
    """
    axis = LOAD_AXES[load_model]
    rows = scenario_rows(results, scenario, load_model)
    ok = ok_only(rows).dropna(subset=["rps"])
    skipped = [
        f"{row['target']} at {float(row[axis.column]):g} {axis.unit}"
        for _, row in ok[generator_bound(ok)].drop_duplicates(["target", axis.column]).iterrows()
        if not pd.isna(row[axis.column])
    ]
    good = trusted(rows)
    level = comparison_level(good, axis.column)
    if level is None:
        return RatioSet(scenario, load_model, None, [], skipped)
    at = good[good[axis.column] == level].groupby("target")["rps"].median()
    asgi = [t for t in sorted(at.index) if interface_of(results, str(t)) == "asgi"]
    wsgi = [t for t in sorted(at.index) if interface_of(results, str(t)) == "wsgi"]
    ratios = [
        Ratio(scenario, load_model, level, str(a), str(w), float(at[a]), float(at[w]))
        for a in asgi
        for w in wsgi
        if at[w] > 0
    ]
    return RatioSet(scenario, load_model, level, ratios, skipped)
