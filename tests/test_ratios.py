"""ASGI/WSGI ratios (harness.results.ratios): median over median, and the paired estimate over
trials with its 95% interval, checked against values worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analysis_fixtures import GTHREAD_TARGET, TARGETS

from harness import schema
from harness.results.folder import Results
from harness.results.ratios import Ratio, asgi_wsgi_ratios, paired_estimate, paired_text
from harness.results.summary import coerce_summary

FLASK, FASTAPI, GTHREAD = "flask-gunicorn-sync", "fastapi-uvicorn", GTHREAD_TARGET["name"]


def row(
    target: str,
    trial: int,
    rps: float,
    users: int = 100,
    status: str = schema.STATUS_OK,
    generator_bound: bool = False,
) -> dict[str, Any]:
    return {
        "scenario": "io", "target": target, "load_model": "closed", "users": users,
        "rate": None, "trial": trial, "rps": rps if status == schema.STATUS_OK else None,
        "status": status, "generator_bound": generator_bound,
    }  # fmt: skip


def results_of(tmp_path: Path, rows: list[dict[str, Any]]) -> Results:
    """A Results over a summary built from ``rows`` (no raw files: ratios read none)."""
    manifest: Any = {"run_id": "r", "targets": {**TARGETS, GTHREAD: GTHREAD_TARGET}}
    return Results(manifest, coerce_summary(pd.DataFrame(rows)), tmp_path)


def only_ratio(results: Results) -> Ratio:
    found = asgi_wsgi_ratios(results, "io")
    assert len(found.ratios) == 1, found
    return found.ratios[0]


def test_three_paired_trials(tmp_path: Path) -> None:
    # r_k = 200/100, 220/100, 180/90 = 2.0, 2.2, 2.0. Geometric mean (2 * 2.2 * 2)^(1/3)
    # = 8.8^(1/3) = 2.06456. Logs 0.693147, 0.788457, 0.693147: mean 0.724917, sd 0.055027;
    # half width t95(2) * sd / sqrt(3) = 4.303 * 0.031770 = 0.136706, so the interval is
    # exp(0.588211) = 1.80076 to exp(0.861623) = 2.36700.
    rows = [row(FASTAPI, 1, 200.0), row(FASTAPI, 2, 220.0), row(FASTAPI, 3, 180.0)]
    rows += [row(FLASK, 1, 100.0), row(FLASK, 2, 100.0), row(FLASK, 3, 90.0)]
    rows += [row(FASTAPI, 1, 50.0, users=10), row(FLASK, 1, 40.0, users=10)]  # another level
    ratio = only_ratio(results_of(tmp_path, rows))
    assert (ratio.asgi, ratio.wsgi, ratio.level) == (FASTAPI, FLASK, 100.0)
    assert ratio.ratio == pytest.approx(2.0)  # median 200 over median 100: unchanged
    assert ratio.paired_trials == 3
    assert ratio.paired_ratio == pytest.approx(2.06456, rel=1e-5)
    assert ratio.ci_low == pytest.approx(1.80076, rel=1e-5)
    assert ratio.ci_high == pytest.approx(2.36700, rel=1e-5)
    assert ratio.has_interval and ratio.estimate == ratio.paired_ratio
    assert paired_text(ratio) == "2.06× (95% CI 1.80–2.37 over 3 paired trials)"


def test_only_trials_trusted_on_both_targets_are_paired(tmp_path: Path) -> None:
    # Flask's trial 2 failed and fastapi's trial 4 measured the generator: pairs k = 1 and 3,
    # r = 300/100 = 3 and 320/80 = 4. Geometric mean sqrt(12) = 3.46410. Logs 1.098612 and
    # 1.386294: mean 1.242453, sd 0.287682 / sqrt(2) = 0.203421; half width
    # t95(1) * sd / sqrt(2) = 12.706 * 0.143841 = 1.827664: exp(-0.585211) = 0.556999 to
    # exp(3.070117) = 21.5440.
    rows = [row(FASTAPI, 1, 300.0), row(FASTAPI, 2, 250.0), row(FASTAPI, 3, 320.0)]
    rows += [row(FASTAPI, 4, 900.0, generator_bound=True), row(FLASK, 4, 100.0)]
    rows += [row(FLASK, 1, 100.0), row(FLASK, 2, 0.0, status=schema.STATUS_FAILED)]
    rows += [row(FLASK, 3, 80.0)]
    ratio = only_ratio(results_of(tmp_path, rows))
    assert ratio.paired_trials == 2
    assert ratio.paired_ratio == pytest.approx(3.46410, rel=1e-5)
    assert ratio.ci_low == pytest.approx(0.556999, rel=1e-5)
    assert ratio.ci_high == pytest.approx(21.5440, rel=1e-5)
    assert ratio.ratio == pytest.approx(300.0 / 100.0)  # medians of 250/300/320 and 80/100/100
    assert paired_text(ratio) == "3.46× (95% CI 0.56–21.5 over 2 paired trials)"


def test_one_trial_has_no_interval(tmp_path: Path) -> None:
    ratio = only_ratio(results_of(tmp_path, [row(FASTAPI, 1, 310.0), row(FLASK, 1, 100.0)]))
    assert ratio.paired_trials == 1
    assert ratio.paired_ratio == pytest.approx(3.1)
    assert ratio.ci_low is None and ratio.ci_high is None and not ratio.has_interval
    assert ratio.estimate == pytest.approx(3.1)
    assert paired_text(ratio) == "3.10× (one trial: no interval)"


def test_no_trial_number_on_both_targets(tmp_path: Path) -> None:
    rows = [row(FASTAPI, 1, 310.0), row(FLASK, 2, 100.0)]
    ratio = only_ratio(results_of(tmp_path, rows))
    assert ratio.paired_trials == 0 and ratio.paired_ratio is None
    assert ratio.ratio == pytest.approx(3.1)
    assert paired_text(ratio) == "3.10× (no paired trials: no interval)"


def test_every_asgi_wsgi_pair_is_paired_on_its_own_trials(tmp_path: Path) -> None:
    # fastapi vs flask: r = 2, 2 (sd 0: the interval is the point). fastapi vs gthread: only
    # trial 1 ran on gthread, r = 200/50 = 4.
    rows = [row(FASTAPI, 1, 200.0), row(FASTAPI, 2, 240.0)]
    rows += [row(FLASK, 1, 100.0), row(FLASK, 2, 120.0), row(GTHREAD, 1, 50.0)]
    found = asgi_wsgi_ratios(results_of(tmp_path, rows), "io")
    by_wsgi = {r.wsgi: r for r in found.ratios}
    assert sorted(by_wsgi) == sorted([FLASK, GTHREAD]) and {r.asgi for r in found.ratios} == {
        FASTAPI
    }
    flask = by_wsgi[FLASK]
    assert flask.paired_trials == 2
    assert (flask.paired_ratio, flask.ci_low, flask.ci_high) == pytest.approx((2.0, 2.0, 2.0))
    gthread = by_wsgi[GTHREAD]
    assert gthread.paired_trials == 1 and gthread.paired_ratio == pytest.approx(4.0)
    assert gthread.ratio == pytest.approx(220.0 / 50.0)  # median 220 over 50
    assert paired_text(gthread) == "4.40× (one trial: no interval)"


def test_paired_estimate_directly() -> None:
    assert paired_estimate([], []) == (None, None, None)
    estimate, low, high = paired_estimate([10.0], [5.0])
    assert estimate == pytest.approx(2.0) and low is None and high is None
    # r = 1 and 4: geometric mean 2; logs 0 and ln 4, sd ln4 / sqrt(2), half width
    # 12.706 * ln4 / 2 = 8.80719: exp(ln 2 -/+ 8.80719).
    estimate, low, high = paired_estimate([1.0, 4.0], [1.0, 1.0])
    half = 12.706 * math.log(4.0) / 2
    assert estimate == pytest.approx(2.0)
    assert low == pytest.approx(2.0 * math.exp(-half)) and high == pytest.approx(
        2.0 * math.exp(half)
    )
    with pytest.raises(ValueError):
        paired_estimate([1.0, 2.0], [1.0])


def test_existing_constructor_still_works() -> None:
    ratio = Ratio("io", "closed", 100.0, FASTAPI, FLASK, 300.0, 100.0)
    assert ratio.ratio == pytest.approx(3.0) and ratio.paired_trials == 0
    assert ratio.paired_ratio is None and ratio.ci_low is None and ratio.ci_high is None
    assert paired_text(ratio) == "3.00× (no paired trials: no interval)"
