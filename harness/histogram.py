"""Latency percentiles from the exact HDR histograms recorded inside the locust process.

This module owns turning one encoded histogram (``latency.json`` "histogram", base64 from
``HdrHistogram.encode()``) into the latency figures of ``summary.csv``, in milliseconds.
Percentiles follow HdrHistogram's definition (nearest rank, reported as the highest value
equivalent to the recorded one, so within 0.1% of the exact latency at 3 significant digits).
"""

from __future__ import annotations

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
    # One pass over the buckets for all percentiles instead of one pass each.
    values = histogram.get_percentile_to_value_dict(list(PERCENTILES))
    p50, p90, p99, p999 = (values[p] * to_ms for p in PERCENTILES)
    return LatencyStats(
        count=count,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        p999_ms=p999,
        max_ms=histogram.get_max_value() * to_ms,
        mean_ms=histogram.get_mean_value() * to_ms,
    )


def latency_stats(encoded: str | bytes | None, unit: str = "us") -> LatencyStats:
    """Latency figures of one encoded histogram; empty stats when there is none."""
    if not encoded:
        return LatencyStats.empty()
    return histogram_stats(decode_histogram(encoded), unit)
