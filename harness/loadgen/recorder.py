"""One cell's recording inside the locust process: exact latencies in its measurement window.

Every request's latency is recorded at full resolution (locust's own stats round to about two
significant digits) into an HDR histogram with 3 significant digits, in microseconds. Only
requests that complete inside the window count; failures are counted apart, by kind, and
never mixed into latency. ``to_dict`` is the cell's ``latency.json``.
"""

from __future__ import annotations

import time
from typing import Any

from hdrh.histogram import HdrHistogram

HIGHEST_US = 3_600_000_000  # one hour; anything slower is a stuck request, clamped
SIGNIFICANT_DIGITS = 3


def _new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)


class Recorder:
    """Everything recorded in one cell's measurement window."""

    def __init__(self, warmup_s: float, duration_s: float) -> None:
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.window_start: float | None = None
        self.window_end: float | None = None
        self.histogram = _new_histogram()
        self.uncorrected = _new_histogram()
        self.by_name: dict[str, dict[str, Any]] = {}
        self.successes = 0
        self.failures = 0
        self.failures_by_kind: dict[str, int] = {}
        self.per_second: dict[int, list[int]] = {}
        self.log: list[tuple[float, int]] | None = None
        self.written = False
        self.connects = 0  # "connect" requests over the whole cell, not just the window
        self.connect_failures = 0
        self.load_started_at: float | None = None

    def open_window(self, now: float) -> None:
        self.window_start = now + self.warmup_s
        self.window_end = self.window_start + self.duration_s

    def record(
        self,
        now: float,
        name: str,
        response_time_ms: float,
        failure_kind: str | None,
        corrected_ms: float | None = None,
    ) -> None:
        """One finished request; corrected_ms is the latency from its intended start."""
        if self.window_start is None or self.window_end is None:
            return  # users still spawning: warm-up
        if not self.window_start <= now < self.window_end:
            return
        entry = self.by_name.get(name)
        if entry is None:
            entry = {"successes": 0, "failures": 0, "histogram": _new_histogram()}
            self.by_name[name] = entry
        second = self.per_second.setdefault(int(now - self.window_start), [0, 0])
        if failure_kind is not None:
            self.failures += 1
            entry["failures"] += 1
            second[1] += 1
            self.failures_by_kind[failure_kind] = self.failures_by_kind.get(failure_kind, 0) + 1
            return
        micros = _micros(response_time_ms if corrected_ms is None else corrected_ms)
        self.successes += 1
        entry["successes"] += 1
        second[0] += 1
        self.histogram.record_value(micros)
        self.uncorrected.record_value(_micros(response_time_ms))
        entry["histogram"].record_value(micros)
        if self.log is not None:
            self.log.append((now, micros))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "unit": "us",
            "window_start": self.window_start,
            "window_end": self.window_end,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "complete": self.window_end is not None and time.time() >= self.window_end,
            "successes": self.successes,
            "failures": self.failures,
            "failures_by_kind": dict(sorted(self.failures_by_kind.items())),
            "histogram": _encode(self.histogram),
            "histogram_uncorrected": _encode(self.uncorrected),
            "per_second": [[s, *self.per_second[s]] for s in sorted(self.per_second)],
            "connects": self.connects,
            "connect_failures": self.connect_failures,
            "load_started_at": self.load_started_at,
            "by_name": {
                name: {
                    "successes": e["successes"],
                    "failures": e["failures"],
                    "histogram": _encode(e["histogram"]),
                }
                for name, e in sorted(self.by_name.items())
            },
        }


def _micros(milliseconds: float) -> int:
    return int(min(max(round(milliseconds * 1000), 1), HIGHEST_US))


def _encode(histogram: HdrHistogram) -> str:
    encoded = histogram.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)


def failure_kind(exception: BaseException | None, response: Any) -> str | None:
    """A short, stable name for what went wrong, or None for a success."""
    if exception is None:
        return None
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return f"HTTP {status}"
    return type(exception).__name__
