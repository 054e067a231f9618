"""Latency percentiles from the exact HDR histograms recorded inside the locust process.

This module owns turning one encoded histogram (``latency.json`` "histogram", base64 from
``HdrHistogram.encode()``) into the latency figures of ``summary.csv``, in milliseconds.
Percentiles are by nearest rank (the ceil(p/100 x count)-th smallest value), reported as the
highest value equivalent to the recorded one: within 0.1% of the exact latency at 3 significant
digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

# Factor from the recorded unit (latency.json "unit") to milliseconds.
UNIT_TO_MS: dict[str, float] = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class LatencyStats:
    """Latency of successful requests in one cell; every figure None when nothing was recorded."""

    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    @classmethod
    def empty(cls) -> LatencyStats:
        return cls(0, None, None, None, None, None, None)


def decode_histogram(encoded: str | bytes) -> HdrHistogram:
    """Decode a base64 ``HdrHistogram.encode()`` string; ValueError when it is not one."""
    raw = encoded.encode("ascii") if isinstance(encoded, str) else encoded
    try:
        return HdrHistogram.decode(raw)
    except Exception as exc:  # hdrh raises assorted errors (zlib, struct, its own) on bad input
        raise ValueError(f"not an encoded HDR histogram: {exc}") from exc


def histogram_stats(histogram: HdrHistogram, unit: str = "us") -> LatencyStats:
    """Percentiles, max and mean of a decoded histogram, converted from ``unit`` to ms."""
    count = int(histogram.get_total_count())
    if count == 0:
        return LatencyStats.empty()
    try:
        to_ms = UNIT_TO_MS[unit]
    except KeyError:
        known = sorted(UNIT_TO_MS)
        raise ValueError(f"unknown latency unit {unit!r}; expected one of {known}") from None
    buckets = recorded_buckets(histogram)
    values = nearest_rank_values(histogram, PERCENTILES, buckets)
    p50, p90, p99, p999 = (values[p] * to_ms for p in PERCENTILES)
    # The mean as hdrh defines it (each bucket at its middle), in one pass over the buckets
    # recorded: hdrh's own get_mean_value walks every bucket in Python, seconds per run.
    middle = histogram._hdr_median_equiv_value
    total = sum(middle(histogram.get_value_from_index(i)) * n for i, n in buckets)
    return LatencyStats(
        count=count,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        p999_ms=p999,
        max_ms=histogram.get_max_value() * to_ms,
        mean_ms=total / count * to_ms,
    )


def recorded_buckets(histogram: HdrHistogram) -> list[tuple[int, int]]:
    """(bucket index, count) of every bucket holding a value, lowest first."""
    counts = histogram.counts[: histogram.counts_len]  # one copy out of the C array
    return [(index, n) for index, n in enumerate(counts) if n]


def nearest_rank_values(
    histogram: HdrHistogram,
    percentiles: tuple[float, ...],
    buckets: list[tuple[int, int]] | None = None,
) -> dict[float, int]:
    """Each percentile's value by nearest rank: the ceil(p/100 x count)-th smallest value.

    The hdrh package rounds the rank instead (``int(p/100 x count + 0.5)``), which can pick
    the sample below the nearest rank, a whole step too low in a sparse tail. One pass over
    the recorded buckets for all percentiles; each value is its bucket's highest equivalent.
    """
    count = histogram.get_total_count()
    # p x count / 100 first: 99.9 / 100 x 25,000 is 24,975.000000000004 in floating point.
    ranks = sorted((max(1, math.ceil(p * count / 100 - 1e-9)), p) for p in percentiles)
    values: dict[float, int] = {}
    seen = 0
    walk = iter(buckets if buckets is not None else recorded_buckets(histogram))
    index = 0
    for rank, percentile in ranks:
        while seen < rank:
            step = next(walk, None)
            if step is None:
                break
            index, n = step
            seen += n
        value = histogram.get_value_from_index(index)
        values[percentile] = histogram.get_highest_equivalent_value(value)
    return values


def latency_stats(encoded: str | bytes | None, unit: str = "us") -> LatencyStats:
    """Latency figures of one encoded histogram; empty stats when there is none."""
    if not encoded:
        return LatencyStats.empty()
    return histogram_stats(decode_histogram(encoded), unit)
