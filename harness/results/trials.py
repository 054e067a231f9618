"""Statistics over the trials of a cell: median, 95% confidence interval, spread, stability.

Cells that differ only in their trial number form a group. This module owns how a group's
figures are computed from the summary table (the group columns of ``summary.csv``). It is pure:
it reads no file and knows nothing of how the figures were measured. No scipy: the critical
values of Student's t come from a table.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import pandas as pd

from harness.results.rows import ok_mask

GROUP_KEYS = ("scenario", "target", "load_model", "users", "rate")
UNSTABLE_CV = 0.10  # a group whose rps varies more than this (stdev / mean) is unstable
# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom; 1.96 beyond.
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
Z95 = 1.96

TRIAL_COLUMNS = (
    "trials",
    "rps_median",
    "rps_ci_low",
    "rps_ci_high",
    "rps_cv",
    "p99_median_ms",
    "p99_ci_low_ms",
    "p99_ci_high_ms",
    "unstable",
)


def t95(df: int) -> float:
    """Two-sided 95% critical value of Student's t with ``df`` degrees of freedom."""
    return T95[df - 1] if 1 <= df <= len(T95) else Z95


def mean_ci(values: list[float]) -> tuple[float, float] | None:
    """95% confidence interval of the mean (Student's t), the low end floored at 0.

    None for fewer than 2 values. Every figure it is used on (rps, latency) is >= 0.
    """
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return max(mean - half, 0.0), mean + half


def trial_stats(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Median, CI low and CI high of one group's values; None where it cannot be known."""
    if not values:
        return None, None, None
    ci = mean_ci(values)
    return statistics.median(values), *(ci if ci else (None, None))


def coefficient_of_variation(values: list[float]) -> float | None:
    """Sample stdev / mean; None for fewer than 2 values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else None


def group_figures(rps: list[float], p99_ms: list[float], trials: int) -> tuple[Any, ...]:
    """The values of TRIAL_COLUMNS for one group, from its ok trials' rps and p99."""
    cv = coefficient_of_variation(rps)
    unstable = None if cv is None else cv > UNSTABLE_CV
    return (trials, *trial_stats(rps), cv, *trial_stats(p99_ms), unstable)


def add_trial_figures(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the summary with TRIAL_COLUMNS filled on every row of each group.

    A group's figures come from its ok cells; every row of the group (skipped or failed ones
    too) carries the same figures. The new columns are plain objects: the caller coerces dtypes.
    """
    frame = frame.copy()
    keys = [
        tuple(None if pd.isna(v) else v for v in values)
        for values in frame[list(GROUP_KEYS)].itertuples(index=False)
    ]
    ok = ok_mask(frame).to_numpy(dtype=bool)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    columns: dict[str, list[Any]] = {c: [None] * len(frame) for c in TRIAL_COLUMNS}
    for positions in groups.values():
        good = [p for p in positions if ok[p]]
        rps = [float(v) for v in frame["rps"].iloc[good].dropna()]
        p99 = [float(v) for v in frame["p99_ms"].iloc[good].dropna()]
        figures = group_figures(rps, p99, len(good))
        for position in positions:
            for column, value in zip(TRIAL_COLUMNS, figures, strict=True):
                columns[column][position] = value
    for column, values in columns.items():
        frame[column] = pd.Series(values, index=frame.index, dtype="object")
    return frame
