"""harness.histogram: percentiles by nearest rank from an HDR histogram."""

from __future__ import annotations

import math
import random

import pytest
from hdrh.histogram import HdrHistogram

from harness.histogram import PERCENTILES, histogram_stats, nearest_rank_values


def histogram_of(values: list[int]) -> HdrHistogram:
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in values:
        histogram.record_value(value)
    return histogram


def nearest_rank(values: list[int], percentile: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percentile / 100 * len(ordered))) - 1]


def test_p99_is_the_nearest_rank_where_rounding_the_rank_would_pick_the_sample_below() -> None:
    # 475 fast requests, 5 slow ones: rank 0.99 x 480 = 475.2 -> the 476th value (slow);
    # rounding the rank (hdrh's own percentiles) takes the 475th (fast).
    values = [400_000] * 475 + [442_000] * 5
    histogram = histogram_of(values)
    assert histogram.get_value_at_percentile(99.0) < 410_000  # hdrh's rounded rank
    value = nearest_rank_values(histogram, (99.0,))[99.0]
    assert histogram.values_are_equivalent(value, 442_000)
    assert histogram_stats(histogram).p99_ms == pytest.approx(442.0, rel=1e-3)


@pytest.mark.parametrize("seed", range(20))
def test_every_percentile_matches_the_sorted_values(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(1, 2000)
    values = [
        rng.choice((rng.randint(1, 10_000), rng.randint(40_000, 60_000))) for _ in range(count)
    ]
    histogram = histogram_of(values)
    found = nearest_rank_values(histogram, PERCENTILES)
    for percentile in PERCENTILES:
        exact = nearest_rank(values, percentile)
        assert histogram.values_are_equivalent(found[percentile], exact), (percentile, count)


@pytest.mark.parametrize("seed", range(5))
def test_mean_and_max_are_hdrh_own(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.randint(1, 5_000_000) for _ in range(rng.randint(1, 3000))]
    histogram = histogram_of(values)
    stats = histogram_stats(histogram)
    assert stats.mean_ms == pytest.approx(histogram.get_mean_value() / 1000, rel=1e-12)
    assert stats.max_ms == histogram.get_max_value() / 1000
    assert stats.count == len(values)
