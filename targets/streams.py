"""What the Flask and FastAPI apps share for their long-lived routes: SSE, WebSocket, background.

These routes live only on ``targets.flask_app`` and ``targets.fastapi_app`` (not in
``common.ROUTES``, which every target serves). As in ``targets.common``, the apps are thin
adapters: parameters, limits, error bodies, event framing and the send schedule are here;
each app only waits (``time.sleep`` in a worker thread vs ``await asyncio.sleep``) and talks
to its framework's stream or socket object.

- ``GET /sse?events=N&interval_ms=M``: ``text/event-stream``, N events, one every M ms
  (the first at once). Each event: ``id: <seq>\\ndata: {"events":N,"sent":<time>,"seq":<seq>}``.
- ``WS /ws``: echo mode (every message is sent back unchanged, text as text, binary as
  binary), or ticker mode when ``ticker_ms`` or ``count`` is given: N messages
  ``{"sent":<time>,"seq":<seq>}``, one every M ms (the first at once), then a normal close
  (1000). A bad parameter: the socket is accepted and closed at once with 1008 (policy
  violation), the reason naming the parameter and its range. A plain HTTP request to /ws
  gets a 426 JSON error.
- ``POST /background?ms=M``: 202 ``{"ms":M,"queued":true,"route":"background"}`` at once,
  then M ms of simulated slow work after the response has been sent.

``seq`` counts from 1. Sends follow a fixed schedule (item ``seq`` at start + (seq - 1) x
interval, the first at once), so slow sends do not drift, and ``sent`` is that *scheduled*
send time (epoch seconds, the stream's ``time.time()`` at its start plus the offset), not the
time the item was built: a server that stalls or falls behind sends items whose ``sent`` is
in the past, and the client's message latency (receipt - ``sent``) shows it. The apps need not
pass it: :meth:`Schedule.ticks` yields each ``seq`` as a :class:`Tick`, an ``int`` that
carries its scheduled time to :func:`sse_event` and :func:`tick`. Echo mode sends back the
client's message unchanged (its own ``sent``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from targets import common

STREAM_ROUTES = common.STREAM_ROUTES  # path -> allowed methods (the table lives in common)
WEBSOCKET_PATHS = tuple(path for path, methods in STREAM_ROUTES.items() if "WEBSOCKET" in methods)

DEFAULT_SSE_EVENTS = 10
MAX_SSE_EVENTS = 10_000
DEFAULT_SSE_INTERVAL_MS = 100
MAX_INTERVAL_MS = 60_000
DEFAULT_TICKER_MS = 100
DEFAULT_TICKER_COUNT = 10
MAX_TICKER_COUNT = 100_000
DEFAULT_BACKGROUND_MS = 100
MAX_BACKGROUND_MS = common.MAX_STALL_MS

# Sent as is by both apps: the Content-Type is given as a header so that Starlette does not
# append "; charset=utf-8" (werkzeug does not), and proxies are asked not to buffer.
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

WS_POLICY_VIOLATION = 1008
WS_NORMAL_CLOSURE = 1000
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 for the code


def int_in_range(
    query: common.Query, name: str, default: int, low: int, high: int, unit: str = ""
) -> int:
    """``common.int_param`` with a lower bound; the same error kinds, the range in the detail."""
    try:
        value = common.int_param(query, name, default, high)
    except common.HttpError as error:
        detail = error.detail.replace(f"from 0 to {high}", f"from {low} to {high}{unit}", 1)
        raise common.HttpError(error.status, error.kind, detail, error.param) from None
    if value < low:
        raw = common.first(query, name) or ""
        detail = f"{name} must be an integer from {low} to {high}{unit}; got {common._shown(raw)}"
        raise common.HttpError(422, "out_of_range", detail, name)
    return value


class Tick(int):
    """A ``seq`` that also carries the epoch time its item is scheduled to be sent at (``due``)."""

    due: float

    def __new__(cls, seq: int, due: float) -> Tick:
        tick = super().__new__(cls, seq)
        tick.due = due
        return tick


def scheduled_time(seq: int) -> float:
    """When item ``seq`` is due: a :class:`Tick`'s ``due``; for a plain int, now."""
    due = getattr(seq, "due", None)
    return time.time() if due is None else float(due)


@dataclass(frozen=True)
class Schedule:
    """``count`` items, one every ``interval_s`` seconds, the first at once."""

    count: int
    interval_s: float

    def ticks(self) -> Iterator[tuple[Tick, float]]:
        """(seq, seconds to wait before sending it); the clock starts at the first item.

        Each seq is a :class:`Tick` whose ``due`` is its scheduled send time: the stream's start
        (epoch) + (seq - 1) x interval. Waits use the monotonic clock, stamps the epoch one."""
        started, epoch = time.monotonic(), time.time()
        for index in range(self.count):
            offset = index * self.interval_s
            wait = max(0.0, started + offset - time.monotonic())
            yield Tick(index + 1, epoch + offset), wait


# --- /sse ---------------------------------------------------------------------------------


def plan_sse(query: common.Query) -> Schedule:
    events = int_in_range(query, "events", DEFAULT_SSE_EVENTS, 1, MAX_SSE_EVENTS)
    interval_ms = int_in_range(
        query, "interval_ms", DEFAULT_SSE_INTERVAL_MS, 0, MAX_INTERVAL_MS, " (milliseconds)"
    )
    return Schedule(events, interval_ms / 1000)


def sse_event(seq: int, events: int, sent: float | None = None) -> bytes:
    """One event; ``sent`` defaults to the scheduled time of ``seq`` (see :class:`Tick`)."""
    stamp = scheduled_time(seq) if sent is None else sent
    data = common.encode({"seq": int(seq), "sent": stamp, "events": events})
    return f"id: {seq}\ndata: ".encode() + data + b"\n\n"


# --- /ws ----------------------------------------------------------------------------------


def plan_ws(query: common.Query) -> Schedule | None:
    """The ticker's schedule, or None for echo mode. Raises ``common.HttpError``."""
    if common.first(query, "ticker_ms") is None and common.first(query, "count") is None:
        return None
    ticker_ms = int_in_range(
        query, "ticker_ms", DEFAULT_TICKER_MS, 1, MAX_INTERVAL_MS, " (milliseconds)"
    )
    count = int_in_range(query, "count", DEFAULT_TICKER_COUNT, 1, MAX_TICKER_COUNT)
    return Schedule(count, ticker_ms / 1000)


def tick(seq: int, sent: float | None = None) -> str:
    """One ticker message; ``sent`` defaults to the scheduled time of ``seq`` (a :class:`Tick`)."""
    stamp = scheduled_time(seq) if sent is None else sent
    return common.encode({"seq": int(seq), "sent": stamp}).decode()


def close_reason(error: common.HttpError) -> str:
    """The 1008 close reason: the error's detail, cut to fit a close frame."""
    return error.detail.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def websocket_only(path: str) -> common.HttpError:
    detail = f"{path} is a WebSocket endpoint; connect with a WebSocket client"
    return common.HttpError(426, "upgrade_required", detail, Upgrade="websocket")


# --- /background ----------------------------------------------------------------------------


def plan_background(query: common.Query) -> common.Wait:
    """The reply to send at once (202) and the work to do after it (``sleep_s``)."""
    ms = common.float_param(query, "ms", DEFAULT_BACKGROUND_MS, MAX_BACKGROUND_MS)
    body = common.encode({"route": "background", "ms": ms, "queued": True})
    return common.Wait(ms / 1000, common.Reply(202, body))


# --- framework errors on these paths --------------------------------------------------------


def http_error(status: int, path: str) -> common.HttpError:
    """``common.http_error`` that also knows the stream routes (405 Allow, 426 on /ws).

    Flask answers an HTTP request to a WebSocket route with 400 (werkzeug's
    WebsocketMismatch), Starlette with 404: both become the same 426 here.
    """
    if path in WEBSOCKET_PATHS and status in (400, 404, 405):
        return websocket_only(path)
    if status == 405 and path in STREAM_ROUTES:
        allowed = ", ".join(STREAM_ROUTES[path])
        detail = f"{path} allows {allowed}"
        return common.HttpError(405, "method_not_allowed", detail, Allow=allowed)
    return common.http_error(status, path)
