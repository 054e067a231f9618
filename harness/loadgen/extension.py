"""Runs inside the locust process: exact latency recording and the measurement window.

Loaded next to a scenario file (``locust -f scenario.py,harness/loadgen/extension.py``); the
orchestrator never imports this module. It

- records every request's latency at full resolution (locust's own stats round to about
  two significant digits) into an HDR histogram with 3 significant digits, in microseconds;
- opens the measurement window ``--gatebench-warmup`` seconds after all users are spawned
  and closes it ``--gatebench-duration`` seconds later: requests that complete outside the
  window are not counted, so warm-up never reaches a figure;
- counts failures apart, by kind, and never mixes them into latency;
- counts requests named ``connect`` (long-lived connections, ``harness.loadgen.users``)
  over the whole cell, warm-up included, since users connect while they spawn: ``connects``,
  ``connect_failures``; and notes when load started (``load_started_at``, epoch seconds);
- writes ``latency.json`` (see ``harness.schema.LATENCY_FILE``) and stops locust itself.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import User, events
from locust.env import Environment

from harness.fileio import atomic_write_text
from harness.loadgen import OPEN_USER_CLASS
from harness.loadgen.open_load import Schedule, check_user_class, intended_start, make_open_user
from harness.schema import WINDOW_FILE

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


_recorder: Recorder | None = None
_environment: Environment | None = None
_schedule = Schedule()


def _scenario_classes() -> list[type[User]]:
    """The scenario's user classes: every loaded user class but the open-load driver."""
    if _environment is None or not _environment.available_user_classes:
        return []
    classes: list[type[User]] = [
        cls  # type: ignore[misc]  # locust annotates the values as User, they are classes
        for name, cls in _environment.available_user_classes.items()
        if name != OPEN_USER_CLASS
    ]
    for cls in classes:
        problem = check_user_class(cls)
        if problem:
            raise RuntimeError(problem)
    return classes


def _open_window_now() -> None:
    if _recorder is not None and _recorder.window_start is None:
        _start_window()


GatebenchOpenUser = make_open_user(_schedule, _scenario_classes, _open_window_now)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("gatebench")
    group.add_argument("--gatebench-out", default="", help="where to write latency.json")
    group.add_argument("--gatebench-warmup", type=float, default=0.0, help="warm-up seconds")
    group.add_argument("--gatebench-duration", type=float, default=0.0, help="window seconds")
    group.add_argument("--gatebench-log", default="", help="optional per-request latency log")
    group.add_argument("--gatebench-rate", type=float, default=0.0, help="open load: arrivals/s")
    group.add_argument("--gatebench-arrivals", choices=("poisson", "fixed"), default="poisson")
    group.add_argument("--gatebench-seed", type=int, default=-1, help="arrival seed (-1: random)")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _recorder, _environment
    _environment = environment
    options = environment.parsed_options
    if options is None or not options.gatebench_out:
        return  # loaded without the harness (e.g. plain `locust -f`): record nothing
    _recorder = Recorder(options.gatebench_warmup, options.gatebench_duration)
    if options.gatebench_log:
        _recorder.log = []
    if options.gatebench_rate > 0:
        seed = None if options.gatebench_seed < 0 else options.gatebench_seed
        _schedule.configure(options.gatebench_rate, options.gatebench_arrivals, seed)


@events.request.add_listener
def _on_request(
    name: str = "",
    request_type: str = "",
    response_time: float = 0.0,
    exception: BaseException | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    if _recorder is None:
        return
    now = time.time()
    # Open load: the first request of a task is timed from the task's intended start.
    intended = intended_start.pop(gevent.getcurrent(), None)
    corrected = None if intended is None else (now - intended) * 1000
    kind = failure_kind(exception, response)
    if name == "connect":
        if kind is None:
            _recorder.connects += 1
        else:
            _recorder.connect_failures += 1
    _recorder.record(now, f"{request_type} {name}", response_time, kind, corrected)


@events.test_start.add_listener
def _on_test_start(**_: Any) -> None:
    if _recorder is not None and _recorder.load_started_at is None:
        _recorder.load_started_at = time.time()


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    # Closed load: warm-up starts once every user is spawned. Open load starts its window
    # when the schedule starts (see _open_window_now).
    if _recorder is None or _recorder.window_start is not None or _schedule.rate > 0:
        return
    _start_window()


def _start_window() -> None:
    assert _recorder is not None
    _recorder.open_window(time.time())
    environment = _environment
    options = environment.parsed_options if environment is not None else None
    if options is not None:
        # Tells the orchestrator when the window opens (it times an injected stall by it).
        window = {"window_start": _recorder.window_start, "window_end": _recorder.window_end}
        folder = os.path.dirname(os.path.abspath(options.gatebench_out))
        atomic_write_text(os.path.join(folder, WINDOW_FILE), json.dumps(window))
    if environment is not None and _recorder.duration_s > 0:
        gevent.spawn_later(_recorder.warmup_s + _recorder.duration_s, _finish, environment)


def _finish(environment: Environment) -> None:
    _write(environment)
    if environment.runner is not None:
        environment.runner.quit()


@events.test_stop.add_listener
def _on_stop(environment: Environment, **_: Any) -> None:
    _write(environment)


def _write(environment: Environment) -> None:
    if _recorder is None or _recorder.written:
        return
    _recorder.written = True
    options = environment.parsed_options
    if options is None:
        return
    record = _recorder.to_dict()
    if _schedule.rate > 0:
        record["open"] = _schedule.to_dict()
    else:
        del record["histogram_uncorrected"]  # same as "histogram" in closed load
    atomic_write_text(options.gatebench_out, json.dumps(record))
    if _recorder.log is not None and options.gatebench_log:
        lines = "".join(f"{t:.6f},{us}\n" for t, us in _recorder.log)
        atomic_write_text(options.gatebench_log, "t,latency_us\n" + lines)
