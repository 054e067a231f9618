"""The HTTP/2 user: several requests in flight over one connection per user.

Runs inside the locust process (scenario files import it; the orchestrator never does). A
scenario subclasses :class:`Http2User` as it would ``FastHttpUser``::

    from locust import constant, task
    from harness.loadgen.h2 import Http2User

    class IoUser(Http2User):
        wait_time = constant(0)

        @task
        def io(self) -> None:
            self.client.get("/io?ms=50", name="/io?ms=50")

How it reaches the target comes from the stage's link (``harness.loadgen.link.current()``,
read when a connection opens): a ``"2"`` target is spoken to in HTTP/2, h2c with prior knowledge
over plain TCP and ALPN over TLS; a ``"1.1"`` target in HTTP/1.1. TLS verifies the server's
certificate against the run's CA, never skipped (a plain ``http://`` host needs none).

**Streams.** Each user keeps ``link.streams`` requests in flight: its own greenlet plus
``streams - 1`` more, each running the user's ``@task`` methods with its ``wait_time``. Over
HTTP/2 they share ONE connection (one ``httpx.Client`` with a one-connection pool: h2 frames
multiplex the streams); over HTTP/1.1 the same client keeps up to ``streams`` connections, one
request on each at a time. So ``users x streams`` requests are in flight either way: the
fairness rule of a 1.1-against-2 comparison is the same client library and the same
concurrency, only the protocol differs. A user's ``on_start`` runs once, in its own greenlet;
the extra streams start with the user.

**What is timed.** Each ``self.client.get/post/request`` fires locust's ``events.request`` like
any HTTP user, so ``harness.loadgen.extension`` records it the same way: ``request_type``
``"H2"`` when the response came over HTTP/2, ``"H1"`` otherwise (the summary can tell the
protocol, and that this client drove the cell); ``response_time`` in ms from ``perf_counter``,
from sending the request until its whole body is read (on a new connection the TCP and TLS
handshakes are on the clock); ``response_length`` the body's bytes. A failure when the request
raised (refused, timed out, reset, certificate not trusted) or the status is >= 400 (the
response is passed along, so a failure is named by the server's ``X-Gatebench-Failure`` header
or its status, as for ``FastHttpUser``).

**Connection policy** (``link.every``, the scenario's ``connection`` setting): keep-alive
keeps a user's connection for as long as the server does (hypercorn closes one after 1000
requests by default; the client then opens the next). ``every N`` over HTTP/2: after N requests the
user starts a new client (a new connection); the old one closes once its requests in flight are
done. Over HTTP/1.1: every N-th request of the user carries ``Connection: close``, as
``link.install`` does for ``FastHttpUser``. Either way about 1/N connections per request.

**Why httpx.** It is well kept, speaks HTTP/2 (through the ``h2`` library) and HTTP/1.1 with
one API, runs under gevent once locust has patched the standard library, and multiplexes
greenlets over one h2 connection. It costs several times more CPU per request than locust's
``FastHttpUser`` (measured on the 2-core development machine, h2c to hypercorn and granian:
about 0.5 ms of client CPU per request with one core saturated on ``/health``, 0.7-0.9 ms at a
few hundred requests per second; ``FastHttpUser`` about 0.14-0.16 ms), so one generator process
tops out near a thousand or two requests per second: the generator ceiling of this user is
calibrated on its own (``harness.loadgen.calibration_locustfile.CalibrationH2User``), not
borrowed from ``FastHttpUser``'s.

**Closed load only.** Open-model load launches one short task per arrival; a user that keeps
several streams in flight has no such task, so discovery reports :data:`OPEN_PROBLEM` for it
(``harness.loadgen.probe`` reads the class attribute ``open_problem``).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from typing import Any

import gevent
import httpx
from gevent.pool import Group
from locust import User
from locust.exception import LocustError, StopTest, StopUser
from locust.user.task import DefaultTaskSet

from harness.loadgen import link

OPEN_PROBLEM = "HTTP/2 users keep several streams in flight per connection: closed load only"
TIMEOUT_S = 60.0  # connect, read, write and pool wait, as FastHttpUser's connection_timeout


class StatusError(Exception):
    """The server answered with an error status (>= 400)."""


class _Connection:
    """One httpx client (over HTTP/2: one TCP connection) and the requests it carries."""

    __slots__ = ("client", "in_flight", "started")

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.started = 0  # requests sent on it so far
        self.in_flight = 0  # ... and not yet answered


_contexts: dict[tuple[str | None, str], ssl.SSLContext] = {}


def _ssl_context(current: link.Link) -> ssl.SSLContext:
    """One context per (CA, HTTP version), made once: httpx would load certifi's whole bundle
    for every client otherwise (a new client per connection). httpcore sets the ALPN protocols
    on it, by HTTP version. Without TLS the context is never used."""
    key = (current.ca_pem, current.http)
    context = _contexts.get(key)
    if context is None:
        context = current.ssl_context() or ssl.create_default_context()
        _contexts[key] = context
    return context


class Http2Session:
    """``Http2User.client``: requests over the user's current connection, each reported as a
    locust request event (see the module docstring)."""

    def __init__(self, user: User, base_url: str) -> None:
        self.user = user
        self.base_url = base_url
        self.link = link.current()
        self.http2 = self.link.http == "2"
        self.every = self.link.every
        self.streams = max(int(self.link.streams), 1)
        self.sent = 0  # requests of this user (HTTP/1.1's Connection: close every N)
        self.current: _Connection | None = None
        self.open: list[_Connection] = []  # current and retired, until closed
        self.closed = False

    def new_client(self) -> httpx.Client:
        pool = 1 if self.http2 else self.streams
        return httpx.Client(
            base_url=self.base_url,
            http1=not (self.http2 and not self.link.tls),  # h2c: prior knowledge, no HTTP/1.1
            http2=self.http2,  # over TLS: ALPN offers h2 (and http/1.1, so a fallback shows)
            verify=_ssl_context(self.link),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            timeout=httpx.Timeout(TIMEOUT_S),
            trust_env=False,  # no proxy from the environment between the generator and target
        )

    def checkout(self) -> _Connection:
        """The connection the next request goes on: a new one after ``every`` requests
        (HTTP/2; HTTP/1.1 closes its connections with a header instead)."""
        if self.closed:
            raise StopUser()
        connection = self.current
        if connection is None or (
            self.http2 and self.every is not None and connection.started >= self.every
        ):
            if connection is not None and connection.in_flight == 0:
                self.release(connection)  # else its last request's checkin closes it
            connection = _Connection(self.new_client())
            self.open.append(connection)
            self.current = connection
        connection.started += 1
        connection.in_flight += 1
        return connection

    def checkin(self, connection: _Connection) -> None:
        connection.in_flight -= 1
        if connection is not self.current and connection.in_flight == 0:
            self.release(connection)

    def release(self, connection: _Connection) -> None:
        if connection in self.open:
            self.open.remove(connection)
        connection.client.close()

    def close(self) -> None:
        """Close every connection (the user stopped; its streams are gone)."""
        self.closed = True
        for connection in list(self.open):
            self.release(connection)
        self.current = None

    def request(
        self,
        method: str,
        path: str,
        name: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
    ) -> httpx.Response | None:
        """Send one request, read the whole body, report it; the response (None on error)."""
        self.sent += 1
        if not self.http2 and self.every is not None and self.sent % self.every == 0:
            headers = {**(headers or {}), "Connection": "close"}
        connection = self.checkout()
        response: httpx.Response | None = None
        exception: BaseException | None = None
        started = time.perf_counter()
        try:
            response = connection.client.request(
                method, path, headers=headers, content=content, json=json
            )
        except Exception as exc:  # as locust's own clients: any error is a failed request
            exception = exc
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            self.checkin(connection)
        if response is not None and response.status_code >= 400:
            exception = StatusError(f"HTTP {response.status_code} {response.reason_phrase}")
        over_h2 = response.http_version == "HTTP/2" if response is not None else self.http2
        self.user.environment.events.request.fire(
            request_type="H2" if over_h2 else "H1",
            name=name or path,
            response_time=elapsed_ms,
            response_length=len(response.content) if response is not None else 0,
            exception=exception,
            response=response,  # status_code and headers: failure_kind names the failure
            context=self.user.context(),
        )
        return response

    def get(self, path: str, name: str | None = None, **kwargs: Any) -> httpx.Response | None:
        return self.request("GET", path, name, **kwargs)

    def post(self, path: str, name: str | None = None, **kwargs: Any) -> httpx.Response | None:
        return self.request("POST", path, name, **kwargs)


class Http2User(User):
    """A user with ``link.streams`` requests in flight over one HTTP/2 connection (HTTP/1.1:
    up to that many connections). ``self.client`` is its :class:`Http2Session`."""

    abstract = True
    open_problem = OPEN_PROBLEM  # discovery: no open-model load (--rates) for these users

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if not self.host:
            raise LocustError("no host: the harness passes it with --host")
        self.client = Http2Session(self, self.host)
        self.extra_streams = Group()  # never in the runner's group: it counts users by it

    def start(self, group: Group) -> Any:
        """Start the user's own greenlet (locust's) and ``streams - 1`` more; when the user's
        greenlet ends (stopped, killed) the others are killed and the connections closed."""
        greenlet = super().start(group)
        greenlet.link(self._stopped)  # runs in a greenlet of its own: may block
        for _ in range(self.client.streams - 1):
            self.extra_streams.spawn(self._run_stream)
        return greenlet

    def _run_stream(self) -> None:
        with contextlib.suppress(gevent.GreenletExit, StopUser, StopTest):
            DefaultTaskSet(self).run()

    def _stopped(self, _: Any) -> None:
        self.extra_streams.kill(block=True)
        self.client.close()
