"""Pure helpers for the SSE and WebSocket scenario users: no locust, no gevent, no I/O.

``harness.loadgen.users`` (inside locust) feeds received bytes to :class:`SseParser` and
times each server message with :func:`message_latency_ms`; keeping them here lets tests
check them without importing locust (which patches the standard library with gevent).

Server messages (both protocols) are JSON objects ``{"seq": int, "sent": epoch float, ...}``
where ``sent`` is the time the server *scheduled* the message for (``targets.streams``: the
stream's start + (seq - 1) x interval), so a server that falls behind shows as latency. The
load generator runs on the same machine, so its clock is the server's and the difference is
the latency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SseEvent:
    """One dispatched server-sent event (https://html.spec.whatwg.org/#event-stream-interpretation)."""

    data: str
    event: str = "message"
    id: str | None = None


class SseParser:
    """Incremental ``text/event-stream`` parser: feed it bytes as they arrive, get whole events.

    Lines end with CRLF, LF or CR (a chunk may split a CRLF); ``data`` lines of one
    event are joined with LF; a blank line dispatches the event; lines starting with ``:``
    are comments; ``retry`` and unknown fields are ignored. An event with no data is not
    dispatched (as in browsers). Text is decoded as UTF-8 once a whole line has arrived, so a
    multi-byte character split across chunks decodes correctly.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.last_event_id: str | None = None
        self._first_line = True
        self._after_cr = False  # the last chunk ended with CR: skip an LF that starts the next

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            line = self._next_line()
            if line is None:
                return events
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _next_line(self) -> str | None:
        if self._after_cr and self._buffer[:1] == b"\n":
            self._buffer = self._buffer[1:]  # the LF of a CRLF split across chunks
        if self._buffer:
            self._after_cr = False
        buffer = self._buffer
        cr, lf = buffer.find(b"\r"), buffer.find(b"\n")
        if cr == -1 and lf == -1:
            return None
        if cr != -1 and (lf == -1 or cr < lf):
            if cr == len(buffer) - 1:
                end, skip, self._after_cr = cr, 1, True  # an LF may follow in the next chunk
            else:
                end, skip = cr, 2 if buffer[cr + 1 : cr + 2] == b"\n" else 1
        else:
            end, skip = lf, 1
        raw, self._buffer = buffer[:end], buffer[end + skip :]
        text = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            text = text.removeprefix("\ufeff")
        return text

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SseEvent | None:
        if self._id is not None:
            self.last_event_id = self._id
        data, event = self._data, self._event or "message"
        self._data, self._event, self._id = [], "", None
        if not data:
            return None
        return SseEvent("\n".join(data), event, self.last_event_id)


class BadMessage(ValueError):
    """A server message that is not ``{"seq": int, "sent": number, ...}``."""


def parse_message(text: str | bytes) -> tuple[int, float]:
    """``(seq, sent)`` of one server message; BadMessage when it has neither."""
    try:
        message: Any = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadMessage(f"not a JSON object: {str(text)[:80]}")
    seq, sent = message.get("seq"), message.get("sent")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise BadMessage(f"no integer seq: {str(text)[:80]}")
    if isinstance(sent, bool) or not isinstance(sent, int | float):
        raise BadMessage(f"no numeric sent: {str(text)[:80]}")
    return seq, float(sent)


def message_latency_ms(received_at: float, sent_at: float) -> float:
    """Milliseconds from the server's (scheduled) send to the client's receipt (epoch seconds,
    same clock).

    Never negative: two reads of one clock can only disagree by its resolution.
    """
    return max((received_at - sent_at) * 1000.0, 0.0)


class SequenceTracker:
    """Counts messages missing from a stream whose ``seq`` should rise by one each time."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.missing = 0

    def see(self, seq: int) -> int:
        """Record ``seq``; return how many messages were skipped just before it."""
        gap = 0 if self.last is None or seq <= self.last else seq - self.last - 1
        self.missing += gap
        self.last = seq if self.last is None else max(seq, self.last)
        return gap
