"""ASGI throughput over WSGI throughput, per scenario, at the level the headline compares at.

Every ASGI target is paired with every WSGI target (the interface comes from
``harness.results.targets``); a ratio is the two medians over trusted trials at the scenario's
comparison level (``harness.results.rows``). Generator-bound cells are left out and named. The
overview chart draws these ratios, and the report says when they are all near 1.

Trials run in rounds, each on a fresh server, so trial k of one target ran close in time to
trial k of every other: drift of the machine hits both alike. Each ratio therefore also carries
its *paired* estimate: over every trial number k trusted on both targets at the level,
r_k = rps_asgi,k / rps_wsgi,k; the estimate is the geometric mean of the r_k and its 95%
confidence interval exp(mean(log r) ± t95(n-1) · sd(log r) / sqrt(n)), n the number of pairs
(none below 2). ``paired_text`` writes it for prose.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pandas as pd

from harness.format import load_text, ratio_number
from harness.results.folder import Results
from harness.results.rows import LOAD_AXES, comparison_level, generator_bound, ok_only, trusted
from harness.results.targets import setting, target_settings
from harness.results.trials import t95

MIN_PAIRS = 2  # paired trials needed for an interval


@dataclass(frozen=True)
class Ratio:
    """Throughput of one ASGI target over one WSGI target, both at the same load level.

    ``ratio`` is the median over the median. The paired fields come from the trials run on
    both targets (``paired_trials`` of them): ``paired_ratio`` is the geometric mean of the
    per-trial ratios (None without a pair), ``ci_low``/``ci_high`` its 95% confidence interval
    (None with fewer than MIN_PAIRS pairs).
    """

    scenario: str
    load_model: str
    level: float
    asgi: str
    wsgi: str
    asgi_rps: float
    wsgi_rps: float
    paired_trials: int = 0
    paired_ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def ratio(self) -> float:
        return self.asgi_rps / self.wsgi_rps

    @property
    def has_interval(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None

    @property
    def estimate(self) -> float:
        """The figure to quote: the paired estimate when it has an interval, else ``ratio``."""
        return self.paired_ratio if self.has_interval and self.paired_ratio else self.ratio


@dataclass(frozen=True)
class RatioSet:
    """The ratios of one scenario and load model, and the generator-bound cells left out."""

    scenario: str
    load_model: str
    level: float | None
    ratios: list[Ratio]
    skipped: list[str]  # "fastapi-uvicorn at 200 users"


def paired_estimate(
    asgi_rps: list[float], wsgi_rps: list[float]
) -> tuple[float | None, float | None, float | None]:
    """Geometric mean of asgi[k] / wsgi[k] and its 95% interval (Student's t on the logs).

    The lists are the paired trials' rps, in the same order. Returns (estimate, low, high):
    all None without a pair, the interval None with fewer than MIN_PAIRS pairs.
    """
    if len(asgi_rps) != len(wsgi_rps):
        raise ValueError("paired_estimate needs as many ASGI as WSGI values")
    logs = [math.log(a / w) for a, w in zip(asgi_rps, wsgi_rps, strict=True)]
    if not logs:
        return None, None, None
    mean = statistics.fmean(logs)
    if len(logs) < MIN_PAIRS:
        return math.exp(mean), None, None
    half = t95(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def _by_trial(rows: pd.DataFrame) -> dict[str, dict[int, float]]:
    """target -> trial number -> rps (median if a trial somehow appears twice), rps > 0 only."""
    known = rows.dropna(subset=["trial", "rps"])
    known = known[known["rps"].astype("float64") > 0]
    medians = known.groupby(["target", "trial"])["rps"].median().reset_index()
    found: dict[str, dict[int, float]] = {}
    for target, trial, rps in medians.itertuples(index=False):
        found.setdefault(str(target), {})[int(trial)] = float(rps)
    return found


def _paired_ratio(
    scenario: str,
    load_model: str,
    level: float,
    asgi: str,
    wsgi: str,
    medians: pd.Series,
    trials: dict[str, dict[int, float]],
) -> Ratio:
    on_a, on_w = trials.get(asgi, {}), trials.get(wsgi, {})
    common = sorted(set(on_a) & set(on_w))
    estimate, low, high = paired_estimate([on_a[k] for k in common], [on_w[k] for k in common])
    return Ratio(
        scenario, load_model, level, asgi, wsgi, float(medians[asgi]), float(medians[wsgi]),
        len(common), estimate, low, high,
    )  # fmt: skip


def asgi_wsgi_ratios(results: Results, scenario: str, load_model: str = "closed") -> RatioSet:
    """Every ASGI/WSGI pair's throughput ratio at the scenario's comparison level.

    Medians over trials, and the paired estimate over the trial numbers trusted on both;
    generator-bound cells are left out (and named in ``skipped``).
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
    at_level = good[good[x] == level]
    at = at_level.groupby("target")["rps"].median()
    trials = _by_trial(at_level)
    settings = target_settings(results)

    def interface(target: object) -> str:
        return str(setting(settings.get(str(target)) or {}, "interface") or "")

    asgi = [str(t) for t in sorted(at.index) if interface(t) == "asgi"]
    wsgi = [str(t) for t in sorted(at.index) if interface(t) == "wsgi"]
    ratios = [
        _paired_ratio(scenario, load_model, level, a, w, at, trials)
        for a in asgi
        for w in wsgi
        if at[w] > 0
    ]
    return RatioSet(scenario, load_model, level, ratios, skipped)


def paired_text(ratio: Ratio) -> str:
    """The ratio for prose, with its interval when the paired trials give one.

    "3.08× (95% CI 2.81–3.38 over 3 paired trials)" (the paired estimate); without an
    interval ``ratio`` (median over median): "3.10× (one trial: no interval)" for one pair,
    "3.10× (no paired trials: no interval)" when no trial number ran on both targets.
    """
    if ratio.has_interval:
        return (
            f"{ratio_number(ratio.estimate)}× (95% CI {ratio_number(ratio.ci_low)}–"
            f"{ratio_number(ratio.ci_high)} over {ratio.paired_trials} paired trials)"
        )
    why = "one trial" if ratio.paired_trials == 1 else "no paired trials"
    return f"{ratio_number(ratio.ratio)}× ({why}: no interval)"
