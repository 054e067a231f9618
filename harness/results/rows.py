"""Which summary rows to trust, how load is put on an axis, and the load level to compare at.

Every filter of summary rows lives here, so the report, the charts, compare and the factors all
leave out the same cells: ``ok_only`` (the cell ran to completion) and ``not_ok``,
``generator_bound`` (it measured the load generator, not the server: never compare it),
``erroring`` (more than ``ERROR_RATE_LIMIT`` of its requests failed), ``unstable`` (its trials
varied too much) and ``trusted`` (ok, with a throughput, not generator-bound).

The headline findings and the charts that show one load level (latency distribution, throughput
over time, the ASGI/WSGI overview, the factors) must agree on that level, so it is chosen here
once (``comparison_level``): among the trusted cells, the level the most targets completed, the
highest of those. Pure functions of summary rows: no file is read here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness import schema
from harness.results.flags import ERROR_RATE_LIMIT


@dataclass(frozen=True)
class LoadAxis:
    """How a load model is put on the x axis."""

    model: str  # "closed" or "open"
    column: str  # the summary column holding the load level
    label: str
    suffix: str  # file-name suffix, "" for the default closed load


LOAD_AXES = {
    "closed": LoadAxis("closed", "users", "concurrent users", ""),
    "open": LoadAxis("open", "rate", "offered arrival rate (requests/s)", "_open"),
}


def ok_mask(rows: pd.DataFrame) -> pd.Series:
    """True for the rows of cells that ran to completion."""
    return rows["status"].eq(schema.STATUS_OK).fillna(False).astype(bool)


def ok_only(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of cells that ran to completion."""
    return rows[ok_mask(rows)]


def not_ok(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of cells that failed, were skipped or never ran: they have no figures."""
    return rows[~ok_mask(rows)]


def generator_bound(rows: pd.DataFrame) -> pd.Series:
    """True for the rows that measured the load generator, not the server."""
    return rows["generator_bound"].fillna(False).astype(bool)


def erroring(rows: pd.DataFrame) -> pd.Series:
    """True for the rows with more than ERROR_RATE_LIMIT of failed requests."""
    return rows["error_rate"].fillna(0.0).astype("float64") > ERROR_RATE_LIMIT


def unstable(rows: pd.DataFrame) -> pd.Series:
    """True for the rows of groups whose throughput varied too much across trials."""
    return rows["unstable"].fillna(False).astype(bool)


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
