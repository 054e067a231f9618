"""ASGI throughput over WSGI throughput, per scenario, at the level the headline compares at.

Every ASGI target is paired with every WSGI target (the interface comes from
``harness.results.targets``); a ratio is the two medians over trusted trials at the scenario's
comparison level (``harness.results.rows``). Generator-bound cells are left out and named. The
overview chart draws these ratios, and the report says when they are all near 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.format import load_text
from harness.results.folder import Results
from harness.results.rows import LOAD_AXES, comparison_level, generator_bound, ok_only, trusted
from harness.results.targets import setting, target_settings


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
    x = LOAD_AXES[load_model].column
    rows = results.scenario_rows(scenario, load_model)
    ok = ok_only(rows).dropna(subset=["rps"])
    skipped = [
        f"{row['target']} at {load_text(load_model, row[x])}"
        for _, row in ok[generator_bound(ok)].drop_duplicates(["target", x]).iterrows()
        if not pd.isna(row[x])
    ]
    good = trusted(rows)
    level = comparison_level(good, x)
    if level is None:
        return RatioSet(scenario, load_model, None, [], skipped)
    at = good[good[x] == level].groupby("target")["rps"].median()
    settings = target_settings(results)

    def interface(target: object) -> str:
        return str(setting(settings.get(str(target)) or {}, "interface") or "")

    asgi = [t for t in sorted(at.index) if interface(t) == "asgi"]
    wsgi = [t for t in sorted(at.index) if interface(t) == "wsgi"]
    ratios = [
        Ratio(scenario, load_model, level, str(a), str(w), float(at[a]), float(at[w]))
        for a in asgi
        for w in wsgi
        if at[w] > 0
    ]
    return RatioSet(scenario, load_model, level, ratios, skipped)
