"""Scenario users for long-lived connections: server-sent events and WebSockets.

Runs inside the locust process (scenario files import it; the orchestrator never does).
Each user holds ONE long-lived connection, so N users are N open connections, and reports
through locust's ``events.request`` like any HTTP request, so ``harness.loadgen.extension``
records it the same way (full resolution, measurement window, failures by kind):

=====================  ==================================================================
request_type / name    what is timed (ms)
=====================  ==================================================================
``SSE|WS connect``     from the start of the TCP connect until the response headers (SSE)
                       or the completed WebSocket handshake; a failure when refused, timed
                       out or answered with an error status. The extension also counts and
                       times these over the whole cell (warm-up included): ``connects``,
                       ``connect_failures``, ``connect``; a failed attempt is counted there
                       only, not among the window's failures.
``SSE first-event``    from the start of the connect until the first server message (also
``WS first-message``   timed over the whole cell: ``first_message``)
``SSE|WS message``     per message: client receive time - the message's ``sent``, the time
                       the server *scheduled* it for (stream start + (seq - 1) x interval;
                       same machine, same clock), so a server that falls behind its schedule
                       shows as message latency. Echo mode: the client's own ``sent``,
                       echoed back: the round trip. A failure when a message is unreadable,
                       missing (a gap in ``seq``) or the connection breaks or goes silent
                       for ``read_timeout_s``.
=====================  ==================================================================

Messages per second are the "message" histogram's count over the window.

Connections held: from a successful connect (once reported) until that connection ends, however
it ends (stream over, error, user stopped), a connection counts in this process's
:func:`held_connections`. When the measurement window closes the extension reads it (through
``sys.modules``: it never imports this module) and counts every requested connection (one per
user) not held then as a failure of kind ``"connect"`` (``connections_held`` in latency.json).

A stream that ends (all its events sent, or a WebSocket closed with 1000) is reconnected;
a failed connect is retried after ``retry_delay_s``. A scenario subclasses a user, sets
class attributes and declares the one task that holds the connection::

    from locust import task
    from harness.loadgen.users import SseUser

    class Ticker(SseUser):
        interval_ms = 100

        @task
        def stream(self) -> None:
            self.hold_stream()  # WebSocketUser: self.hold_socket()

The host always comes from the harness (``--host``). At import this module raises the
process's open-file limit to its hard limit: thousands of users need thousands of sockets.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import gevent
import websocket
from locust import User, constant

from harness.loadgen.parse import (
    BadMessage,
    SequenceTracker,
    SseParser,
    message_latency_ms,
    parse_message,
)

READ_SIZE = 65536


def raise_open_file_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


OPEN_FILE_LIMIT = raise_open_file_limit()

_held: dict[str, int] = {}  # protocol ("SSE", "WS") -> connections held right now


def held_connections(protocol: str | None = None) -> int:
    """Connections the users of this process hold right now: of one protocol, or all."""
    if protocol is None:
        return sum(_held.values())
    return _held.get(protocol, 0)


def held_by_protocol() -> dict[str, int]:
    """Connections held right now, by protocol."""
    return dict(_held)


@contextlib.contextmanager
def holding(protocol: str) -> Iterator[None]:
    """Counts one held connection of ``protocol`` for as long as the block runs."""
    _held[protocol] = _held.get(protocol, 0) + 1
    try:
        yield
    finally:
        _held[protocol] -= 1


class HttpStatus:
    """Stands in for a response in ``events.request``: locust_ext names failures by status."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class StreamError(Exception):
    """The server answered, but not with a usable stream."""


class MissedMessage(Exception):
    """A message never arrived: the next one's ``seq`` skipped it."""


class WebSocketClosed(Exception):
    """The server closed the WebSocket with a code other than 1000 (normal)."""


class _LongLivedUser(User):
    abstract = True
    holds_connection = True  # discovery: these users cannot run open-model load (--rates)
    wait_time = constant(0)
    protocol = ""  # request_type of every event: "SSE" or "WS"
    first_name = "first-message"
    interval_ms: int = 100  # server-side gap between messages (whole milliseconds)
    count: int = 10_000  # messages per connection (the server's limit; a stream that ends
    # is reconnected, so this only needs to outlast a cell: 1000 s at 100 ms)
    connect_timeout_s: float = 10.0
    read_timeout_s: float | None = None  # default: max(5 s, 10 intervals)
    retry_delay_s: float = 1.0  # after a failed connect, before the next attempt
    _broken = False  # the connection just held broke: pause before reconnecting

    def report(
        self,
        name: str,
        response_time_ms: float,
        length: int = 0,
        exception: BaseException | None = None,
        response: Any = None,
    ) -> None:
        self.environment.events.request.fire(
            request_type=self.protocol,
            name=name,
            response_time=response_time_ms,
            response_length=length,
            exception=exception,
            response=response,
            context={},
        )

    def read_timeout(self) -> float:
        if self.read_timeout_s is not None:
            return self.read_timeout_s
        return max(5.0, 10 * self.interval_ms / 1000.0)

    def address(self) -> tuple[str, str, int, str]:
        """(scheme, host, port, path-prefix) of the harness-given ``--host``."""
        if not self.host:
            raise StreamError("no host: the harness passes it with --host")
        parts = urlsplit(self.host)
        secure = parts.scheme in ("https", "wss")
        port = parts.port or (443 if secure else 80)
        return ("https" if secure else "http"), parts.hostname or "", port, parts.path.rstrip("/")

    def on_message(
        self, text: str | bytes, received_at: float, started: float, tracker: SequenceTracker
    ) -> None:
        """Record one server message: first-message time once, its latency, any gap."""
        if tracker.last is None:
            self.report(self.first_name, (time.perf_counter() - started) * 1000.0, len(text))
        try:
            seq, sent = parse_message(text)
        except BadMessage as exc:
            self.report("message", 0.0, len(text), exc)
            return
        for _ in range(tracker.see(seq)):
            self.report("message", 0.0, 0, MissedMessage(f"seq before {seq} never arrived"))
        self.report("message", message_latency_ms(received_at, sent), len(text))

    def connect_failed(self, started: float, exc: BaseException, response: Any = None) -> None:
        self.report("connect", (time.perf_counter() - started) * 1000.0, 0, exc, response)
        gevent.sleep(self.retry_delay_s)

    def stream_failed(self, exc: BaseException) -> None:
        """An open connection broke: a failed "message", then (``pause_if_broken``, once the
        connection is released and no longer counted as held) a pause before reconnecting."""
        self.report("message", 0.0, 0, exc)
        self._broken = True

    def pause_if_broken(self) -> None:
        if self._broken:
            self._broken = False
            gevent.sleep(self.retry_delay_s)


class SseUser(_LongLivedUser):
    """Holds one ``GET /sse?events=<count>&interval_ms=<interval_ms>`` stream per user."""

    abstract = True
    protocol = "SSE"
    first_name = "first-event"
    path = "/sse"

    def hold_stream(self) -> None:
        """Connect, record every event until the stream ends or breaks, then return."""
        scheme, host, port, prefix = self.address()
        query = urlencode({"events": self.count, "interval_ms": int(self.interval_ms)})
        connection_class = (
            http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(host, port, timeout=self.connect_timeout_s)
        started = time.perf_counter()
        try:
            try:
                connection.request(
                    "GET", f"{prefix}{self.path}?{query}", headers={"Accept": "text/event-stream"}
                )
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self.connect_failed(started, exc)
                return
            if response.status != 200:
                error = StreamError(f"HTTP {response.status} {response.reason}")
                self.connect_failed(started, error, HttpStatus(response.status))
                return
            self.report("connect", (time.perf_counter() - started) * 1000.0)
            with holding(self.protocol):
                if connection.sock is not None:
                    connection.sock.settimeout(self.read_timeout())
                self.read_events(response, started)
        finally:
            connection.close()
        self.pause_if_broken()

    def read_events(self, response: http.client.HTTPResponse, started: float) -> None:
        parser = SseParser()
        tracker = SequenceTracker()
        while True:
            try:
                chunk = response.read1(READ_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                self.stream_failed(exc)
                return
            received_at = time.time()
            if not chunk:
                return  # the server ended the stream: the task runs again and reconnects
            for event in parser.feed(chunk):
                self.on_message(event.data, received_at, started, tracker)


class WebSocketUser(_LongLivedUser):
    """Holds one WebSocket per user: ``/ws?ticker_ms=..&count=..`` pushes, or echo.

    ``mode = "ticker"``: the server pushes ``count`` messages, one every ``interval_ms``.
    ``mode = "echo"``: the user sends ``{"seq", "sent"}`` every ``interval_ms`` on ``/ws``
    and times the echoed reply (a round trip).
    """

    abstract = True
    protocol = "WS"
    first_name = "first-message"
    path = "/ws"
    mode = "ticker"
    count = 100_000

    def url(self) -> str:
        scheme, host, port, prefix = self.address()
        ws_scheme = "wss" if scheme == "https" else "ws"
        url = f"{ws_scheme}://{host}:{port}{prefix}{self.path}"
        if self.mode == "ticker":
            url += "?" + urlencode({"ticker_ms": int(self.interval_ms), "count": self.count})
        elif self.mode != "echo":
            raise StreamError(f"{type(self).__name__}.mode must be 'ticker' or 'echo'")
        return url

    def hold_socket(self) -> None:
        """Connect, record messages until the socket closes or breaks, then return."""
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(self.url(), timeout=self.connect_timeout_s)
        except websocket.WebSocketBadStatusException as exc:
            self.connect_failed(started, exc, HttpStatus(exc.status_code))
            return
        except (OSError, websocket.WebSocketException) as exc:
            self.connect_failed(started, exc)
            return
        try:
            self.report("connect", (time.perf_counter() - started) * 1000.0)
            with holding(self.protocol):
                ws.settimeout(self.read_timeout())
                if self.mode == "echo":
                    self.echo(ws, started)
                else:
                    self.receive(ws, started)
        except (OSError, websocket.WebSocketException) as exc:
            self.stream_failed(exc)
        finally:
            ws.shutdown()  # no closing handshake: a stopping user must not wait for it
        self.pause_if_broken()

    def receive(self, ws: websocket.WebSocket, started: float) -> None:
        tracker = SequenceTracker()
        while True:
            if not self.next_message(ws, started, tracker):
                return

    def echo(self, ws: websocket.WebSocket, started: float) -> None:
        tracker = SequenceTracker()
        interval_s = self.interval_ms / 1000.0
        due = time.perf_counter()
        for seq in range(self.count):
            ws.send(json.dumps({"seq": seq, "sent": time.time()}))
            if not self.next_message(ws, started, tracker):
                return
            due += interval_s
            gevent.sleep(max(0.0, due - time.perf_counter()))

    def next_message(
        self, ws: websocket.WebSocket, started: float, tracker: SequenceTracker
    ) -> bool:
        """Receive and record one message; False when the server closed the socket."""
        opcode, data = ws.recv_data()
        received_at = time.time()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            if code != 1000:
                reason = data[2:].decode("utf-8", errors="replace")
                self.stream_failed(WebSocketClosed(f"closed {code} {reason}".strip()))
            return False
        self.on_message(data, received_at, started, tracker)
        return True
