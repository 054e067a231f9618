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
``failures_by_kind``      ``failures`` by kind: what the server named in its
                          ``X-Gatebench-Failure`` header (``"pool timeout"``), else
                          ``"HTTP <status>"``, an exception's class name,
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
``tcp_connects``          TCP connections this (locust) process started in the window: how often
                          the server made the generator connect again (``watch_tcp_connects``);
                          about one per request when the server closes after every response (no
                          keep-alive), about 0 when it keeps connections open. Null: not counted
``tcp_active_opens``      the kernel's ``Tcp: ActiveOpens`` (``/proc/net/snmp``) at the window's
                          close minus at its start: the same count for the whole machine (network
                          namespace), so every other process's connects too, a cross-check only.
                          Null: unreadable, or the record was taken before the window closed
========================  ==========================================================================

Connections per request (``harness.results.summary``: ``tcp_connects`` / the window's requests)
is counted in the generator process itself, not read from the machine-wide ``ActiveOpens``:
the machine's count also holds every other process's connects (a harness starting servers and
polling their readiness beside this run, tests running in parallel, other benchmarks), which
on a shared machine can exceed the generator's own. The process count comes from a
``socket.connect`` audit hook (PEP 578, ``sys.addaudithook``): the interpreter raises that
event on every ``connect``/``connect_ex`` of any socket, whatever library or monkey-patching
made it (locust's FastHttpUser, requests, the WebSocket client). A non-blocking connect (gevent)
calls ``connect_ex`` again once the handshake is done, so a call on a socket that is already
connected is not counted: each TCP connection attempt counts once, at its start, refused and
timed-out attempts included (as ``ActiveOpens`` counts them). Attempts are counted by the time
they start, in the same window ``[window_start, window_end)`` as the requests (a connection made
just before the window for a request completing in it is not counted, one made just before the
close is: the ratio is off by at most one connection per user). The cost: the hook runs on
every audit event of the process (a few ``builtins.id`` per request under gevent, about 0.1 us
each), well under 1% of what locust spends on a request.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
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

SNMP_PATH = "/proc/net/snmp"  # Linux: the kernel's TCP counters, ActiveOpens among them
TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


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

    def __init__(self, warmup_s: float, duration_s: float, count_connects: bool = False) -> None:
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
        # TCP connections started in the window: by this process (None: not counted; see
        # watch_tcp_connects) and by the whole machine (ActiveOpens at the close - at the start).
        self.tcp_connects: int | None = 0 if count_connects else None
        self.active_opens_at_start: int | None = None
        self.tcp_active_opens: int | None = None

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

    def tcp_connect(self, now: float) -> None:
        """This process started a TCP connection at ``now`` (``watch_tcp_connects``)."""
        if self.tcp_connects is not None and not self.written and self.in_window(now):
            self.tcp_connects += 1

    def active_opens(self, value: int | None, at_close: bool) -> None:
        """The machine's ActiveOpens (``read_active_opens``) at the window's start or close."""
        if not at_close:
            self.active_opens_at_start = value
            return
        start = self.active_opens_at_start
        if value is None or start is None or value < start:
            self.tcp_active_opens = None
        else:
            self.tcp_active_opens = value - start

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
            "tcp_connects": self.tcp_connects,
            "tcp_active_opens": self.tcp_active_opens,
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


# A response header by which a target names its own failure (targets.common.FAILURE_HEADER):
# "pool timeout", "database unavailable", "upstream unavailable".
FAILURE_HEADER = "X-Gatebench-Failure"
MAX_FAILURE_KIND_CHARS = 60


def named_failure(response: Any) -> str | None:
    """The kind a response names in ``FAILURE_HEADER``, or None. Works on any response with a
    ``headers`` mapping (locust's FastResponse and requests' Response; names case-insensitive
    there, tried as sent and lower-cased for a plain dict); a blank value is no name."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(FAILURE_HEADER) or headers.get(FAILURE_HEADER.lower())
    except Exception:  # a headers object without a usable get(): no name
        return None
    if isinstance(value, list):  # geventhttpclient: a repeated header gives every value
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    return value.strip()[:MAX_FAILURE_KIND_CHARS] or None


def failure_kind(exception: BaseException | None, response: Any) -> str | None:
    """A short, stable name for what went wrong, or None for a success: the server's own name
    for it (``FAILURE_HEADER``) when the response carries one, else its HTTP status, else the
    exception's class."""
    if exception is None:
        return None
    named = named_failure(response)
    if named is not None:
        return named
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return f"HTTP {status}"
    return type(exception).__name__


def parse_active_opens(snmp: str) -> int | None:
    """``ActiveOpens`` from the text of ``/proc/net/snmp``: a ``Tcp:`` line of field names
    followed by a ``Tcp:`` line of their values. None when the text has no such field."""
    rows = [line.split()[1:] for line in snmp.splitlines() if line.startswith("Tcp:")]
    for names, values in zip(rows[::2], rows[1::2], strict=False):
        if "ActiveOpens" in names:
            try:
                return int(values[names.index("ActiveOpens")])
            except (IndexError, ValueError):
                return None
    return None


def read_active_opens(path: str = SNMP_PATH) -> int | None:
    """The machine's (network namespace's) TCP connections actively opened so far; None when
    ``/proc/net/snmp`` is unreadable (not Linux) or has no ActiveOpens."""
    try:
        with open(path) as handle:
            return parse_active_opens(handle.read())
    except (OSError, UnicodeDecodeError):
        return None


def starts_tcp_connection(sock: Any) -> bool:
    """A ``socket.connect`` audit event on ``sock`` starts a new TCP connection: an IPv4/IPv6
    stream socket not connected yet. gevent's non-blocking connect calls ``connect_ex`` again
    once the handshake completed (the socket is connected then): that call is not a new one."""
    if getattr(sock, "family", None) not in TCP_FAMILIES:
        return False
    if getattr(sock, "type", None) != socket.SOCK_STREAM:
        return False
    try:
        sock.getpeername()
    except OSError:
        return True  # not connected: this connect starts the connection
    return False


_connect_listeners: list[Callable[[], None]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    try:
        if args and starts_tcp_connection(args[0]):
            for listener in _connect_listeners:
                listener()
    except Exception:  # an audit hook that raises would fail the connect it audits
        pass


def watch_tcp_connects(listener: Callable[[], None]) -> None:
    """Call ``listener()`` each time this process starts a TCP connection (any thread, any
    library; see the module docstring). Audit hooks last as long as the process: the hook is
    installed once, with the first listener."""
    if not _connect_listeners:
        sys.addaudithook(_audit)
    _connect_listeners.append(listener)
