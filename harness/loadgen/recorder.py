"""One cell's recording inside the locust process: exact latencies in its measurement window.

Every request's latency is recorded at full resolution (locust's own stats round to about two
significant digits) into an HDR histogram with 3 significant digits, in microseconds. Only
requests that complete inside the window ``[window_start, window_end)`` count; failures are
counted apart, by kind, and never mixed into latency. ``to_dict`` is the cell's
``latency.json``; ``harness.loadgen.extension`` adds the last keys when it writes the file.

``latency.json`` (every histogram: ``HdrHistogram.encode()`` as ASCII, microseconds):

========================  ==========================================================================
key                       meaning
========================  ==========================================================================
``schema``, ``unit``      1, ``"us"``
``window_start/_end``     the measurement window, epoch seconds (null: it never opened)
``duration_s``            the window's length; ``warmup_s``: from all users spawned (open load:
                          the schedule's start) to the window's start
``complete``              true when the window ran to its end before the record was taken
``successes``             successful requests completing in the window
``failures``              failed requests completing in the window, plus, for a long-lived
                          connection cell, one per requested connection not held when the
                          window closed (kind ``"connect"``). A failed connect *attempt* is
                          counted in ``connect_failures`` only, never here (a user that never
                          got through would count twice)
``failures_by_kind``      ``failures`` by kind: ``"HTTP <status>"``, an exception's class name,
                          ``"connect"`` (a requested connection not held at the window's close)
``histogram``             latency of the window's successes (open load: from the intended start)
``histogram_uncorrected`` open load only: the same requests timed from their actual send
``per_second``            rows ``[second, ok, failed, mean_ms]`` by second of the window in which
                          requests completed: successes, failures, and the mean latency (as in
                          ``histogram``, so from the intended start in open load) of that
                          second's successes in ms, null when it had none
``by_name``               per ``"<request_type> <name>"``: ``successes``, ``failures``,
                          ``histogram``, as above (``"<SSE|WS> connect"`` failures: the
                          requested connections not held at the window's close)
``connects``              successful ``connect`` requests of long-lived connections (SSE/WS)
                          over the whole stage, warm-up included
``connect_failures``      failed connect attempts (refused, timed out, error status) over the
                          whole stage
``connect``               ``{successes, failures, histogram}`` of connect attempts over the whole
                          stage (users connect as they spawn, mostly in warm-up)
``first_message``         likewise for ``first-message`` (WS) / ``first-event`` (SSE): from the
                          start of the connect to the first server message
``connections_held``      long-lived connection cells only: connections held when the window
                          closed (``harness.loadgen.users.held_connections``)
``load_started_at``       epoch seconds at which the stage's users started
``host``                  the target's URL (added by the extension)
``open``                  open load only (added by the extension): ``rate``, ``arrivals``,
                          ``offered`` (= rate x duration_s), ``launched`` (arrivals launched
                          over the stage), ``launched_in_window`` (those whose intended start
                          fell in the window), ``dropped`` (arrivals not launched: too many in
                          flight), ``in_flight_at_end`` (tasks of the stage launched but not
                          finished when the window closed), ``late_scheduler`` (arrivals the
                          driver loop reached more than ``LATE_S`` behind schedule, over the
                          stage), and, at each task's actual start (its first request's
                          completion minus its response time) for first requests completing
                          in the window: ``late`` (more than ``LATE_S`` after the intended
                          start), ``max_lateness_ms``, ``lateness_p99_ms`` (null: none) and
                          ``lateness_histogram`` (microseconds)
========================  ==========================================================================
"""

from __future__ import annotations

import time
from typing import Any

from hdrh.histogram import HdrHistogram

HIGHEST_US = 3_600_000_000  # one hour; anything slower is a stuck request, clamped
SIGNIFICANT_DIGITS = 3
LATE_S = 0.010  # open load: a start more than 10 ms behind its schedule counts as late

# Long-lived connections (harness.loadgen.users): their request types and special names.
LONG_LIVED_TYPES = ("SSE", "WS")
CONNECT = "connect"
FIRST_MESSAGE = ("first-message", "first-event")
UNHELD_KIND = "connect"  # failure kind of a requested connection not held at the window's close


def _new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)


class Timing:
    """Successes (with their latency) and failures of one kind of request."""

    def __init__(self) -> None:
        self.successes = 0
        self.failures = 0
        self.histogram = _new_histogram()

    def add(self, response_time_ms: float, failed: bool) -> None:
        if failed:
            self.failures += 1
        else:
            self.successes += 1
            self.histogram.record_value(_micros(response_time_ms))

    def to_dict(self) -> dict[str, Any]:
        return {
            "successes": self.successes,
            "failures": self.failures,
            "histogram": _encode(self.histogram),
        }


class Recorder:
    """Everything recorded in one cell: its measurement window and a few whole-stage counts."""

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
        self.per_second: dict[int, list[int]] = {}  # second -> [ok, failed, sum of ok in us]
        self.log: list[tuple[float, int]] | None = None
        self.written = False
        self.connects = 0  # "connect" requests over the whole cell, not just the window
        self.connect_failures = 0
        self.connect = Timing()  # ... and their timings, over the whole cell
        self.first_message = Timing()
        self.connections_held: int | None = None  # set at the window's close (long-lived)
        self.load_started_at: float | None = None
        # Open load: lateness of each task's actual start, for first requests in the window.
        self.lateness = _new_histogram()
        self.late = 0
        self.max_lateness_s = 0.0

    def open_window(self, now: float) -> None:
        self.window_start = now + self.warmup_s
        self.window_end = self.window_start + self.duration_s

    def in_window(self, now: float) -> bool:
        if self.window_start is None or self.window_end is None:
            return False  # users still spawning: warm-up
        return self.window_start <= now < self.window_end

    def request(
        self,
        now: float,
        request_type: str,
        name: str,
        response_time_ms: float,
        failure_kind: str | None,
        intended: float | None = None,
    ) -> None:
        """One finished request as locust reports it; ``intended``: open load's intended start
        of the task, given with the task's first request only."""
        corrected = None
        if intended is not None:
            corrected = (now - intended) * 1000
            self.record_lateness(now, now - response_time_ms / 1000 - intended)
        if request_type in LONG_LIVED_TYPES:
            self.record_stage(name, response_time_ms, failure_kind)
            if name == CONNECT and failure_kind is not None:
                return  # a failed attempt: counted in connect_failures only
        self.record(now, f"{request_type} {name}", response_time_ms, failure_kind, corrected)

    def record_stage(self, name: str, response_time_ms: float, failure_kind: str | None) -> None:
        """Whole-stage figures of a long-lived connection: its connect and first message."""
        if self.written:
            return
        failed = failure_kind is not None
        if name == CONNECT:
            if failed:
                self.connect_failures += 1
            else:
                self.connects += 1
            self.connect.add(response_time_ms, failed)
        elif name in FIRST_MESSAGE:
            self.first_message.add(response_time_ms, failed)

    def record_lateness(self, now: float, lateness_s: float) -> None:
        """Open load: how late a task actually started (its first request completing at now)."""
        if not self.in_window(now):
            return
        self.lateness.record_value(_micros(lateness_s * 1000))
        if lateness_s > LATE_S:
            self.late += 1
        self.max_lateness_s = max(self.max_lateness_s, lateness_s)

    def record(
        self,
        now: float,
        name: str,
        response_time_ms: float,
        failure_kind: str | None,
        corrected_ms: float | None = None,
    ) -> None:
        """One finished request; corrected_ms is the latency from its intended start."""
        if not self.in_window(now):
            return
        assert self.window_start is not None
        entry = self._entry(name)
        second = self.per_second.setdefault(int(now - self.window_start), [0, 0, 0])
        if failure_kind is not None:
            self.failures += 1
            entry["failures"] += 1
            second[1] += 1
            self._count_kind(failure_kind)
            return
        micros = _micros(response_time_ms if corrected_ms is None else corrected_ms)
        self.successes += 1
        entry["successes"] += 1
        second[0] += 1
        second[2] += micros
        self.histogram.record_value(micros)
        self.uncorrected.record_value(_micros(response_time_ms))
        entry["histogram"].record_value(micros)
        if self.log is not None:
            self.log.append((now, micros))

    def close_connections(self, requested: dict[str, int], held: dict[str, int]) -> None:
        """At the window's close, a long-lived connection cell: ``requested`` and ``held``
        connections by protocol ("SSE", "WS"). Each requested one not held is a failure."""
        self.connections_held = sum(held.values())
        for protocol, wanted in sorted(requested.items()):
            missing = max(0, wanted - held.get(protocol, 0))
            if missing:
                self.failures += missing
                self._count_kind(UNHELD_KIND, missing)
                self._entry(f"{protocol} {CONNECT}")["failures"] += missing

    def open_figures(self) -> dict[str, Any]:
        """Open load: the lateness keys of latency.json's "open" (see the module docstring)."""
        count = self.lateness.get_total_count()
        p99 = self.lateness.get_value_at_percentile(99.0) / 1000 if count else None
        return {
            "late": self.late,
            "max_lateness_ms": round(self.max_lateness_s * 1000, 3),
            "lateness_p99_ms": None if p99 is None else round(p99, 3),
            "lateness_histogram": _encode(self.lateness),
        }

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self.by_name.get(name)
        if entry is None:
            entry = {"successes": 0, "failures": 0, "histogram": _new_histogram()}
            self.by_name[name] = entry
        return entry

    def _count_kind(self, kind: str, count: int = 1) -> None:
        self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + count

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
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
            "per_second": [
                [s, ok, failed, round(total / ok / 1000, 3) if ok else None]
                for s, (ok, failed, total) in sorted(self.per_second.items())
            ],
            "connects": self.connects,
            "connect_failures": self.connect_failures,
            "connect": self.connect.to_dict(),
            "first_message": self.first_message.to_dict(),
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
        if self.connections_held is not None:
            record["connections_held"] = self.connections_held
        return record


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
