"""How this locust process reaches the current stage's target: HTTP version, TLS, reuse.

The orchestrator puts a ``link`` into each stage's go file (``harness.loadgen.stages.write_go``)
and a locust master forwards it to its workers; the extension calls :func:`set_link` before
the stage's users start. Users read :func:`current`:

==============  ================================================================================
``http``        the target's HTTP version, ``"1.1"`` or ``"2"`` (its row in the target table).
                An HTTP/2 user (``harness.loadgen.h2``) speaks h2 to a ``"2"`` target (h2c with
                prior knowledge over plain TCP, ALPN over TLS) and HTTP/1.1 otherwise.
``ca_pem``      the run's certificate authority (PEM text) when the target serves TLS, else None:
                every client of the process verifies the server's certificate against it.
``connection``  the scenario's ``settings["connection"]``: ``"keep-alive"`` (the default),
                ``"close"`` (a new connection for every request) or ``"every N"`` (a new
                connection after N requests); :func:`requests_per_connection` parses it.
``streams``     the scenario's ``settings["streams"]``: requests each HTTP/2 user keeps in
                flight at once over its one connection (1 when unset).
==============  ================================================================================

For locust's ``FastHttpUser`` (HTTP/1.1) :func:`install` makes both take effect without the
scenario's code changing: TLS verification through the CA, and the connection policy by
sending ``Connection: close`` on every N-th request of a user, so the server answers and closes
the connection and the user's next request opens a new one (the TCP handshake, and the TLS
handshake over TLS, on the clock). The generator counts the connections it opens
(``connections_per_request``): 1.0 for ``close``, 1/N for ``every N``, ~0 for keep-alive.

Standard library only at import: the orchestrator imports :func:`requests_per_connection` to
validate scenario settings, and must never load locust (``install`` imports it when called).
"""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import asdict, dataclass
from typing import Any

HTTP_VERSIONS = ("1.1", "2")
KEEP_ALIVE = "keep-alive"
CLOSE = "close"
_EVERY = re.compile(r"^every\s+(\d+)$")
CONNECTION_HELP = '"keep-alive", "close" or "every N" (a new connection after N requests)'


def requests_per_connection(value: Any) -> int | None:
    """The ``connection`` setting as requests per connection: None for keep-alive (a user's
    connection lasts while the server keeps it), 1 for ``close``, N for ``every N``. Raises
    ValueError naming what is accepted."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text == KEEP_ALIVE:
        return None
    if text == CLOSE:
        return 1
    match = _EVERY.match(text or "")
    if match and int(match.group(1)) >= 1:
        return int(match.group(1))
    raise ValueError(f"{value!r} is not a connection policy: use {CONNECTION_HELP}")


@dataclass(frozen=True)
class Link:
    http: str = "1.1"
    ca_pem: str | None = None
    connection: str = KEEP_ALIVE
    streams: int = 1

    @property
    def tls(self) -> bool:
        return self.ca_pem is not None

    @functools.cached_property
    def every(self) -> int | None:
        """Requests per connection (None: keep-alive); parsed once, read on every request."""
        return requests_per_connection(self.connection)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts only the run's CA (None without TLS)."""
        if self.ca_pem is None:
            return None
        return ssl.create_default_context(cadata=self.ca_pem)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Link:
        if not data:
            return cls()
        known = {k: data[k] for k in ("http", "ca_pem", "connection", "streams") if k in data}
        return cls(**known)


_current = Link()


def current() -> Link:
    """The link of the stage running now (plain HTTP/1.1 with keep-alive before any)."""
    return _current


def set_link(link: Link) -> None:
    global _current
    _current = link


_installed = False


def install() -> None:
    """Make FastHttpUser follow the current link (TLS verification, connection policy).

    Called once by the extension in the locust process. FastHttpUser reads its class
    attributes when a user starts, and every stage starts its users from zero, after
    :func:`set_link`; the ``Connection: close`` header is decided per request."""
    global _installed
    if _installed:
        return
    import gevent.ssl
    from locust.contrib.fasthttp import FastHttpSession, FastHttpUser

    def context_factory() -> Any:
        ca = _current.ca_pem
        if ca is None:  # plain HTTP: never used
            return gevent.ssl.create_default_context()
        return gevent.ssl.create_default_context(cadata=ca)

    FastHttpUser.insecure = False
    FastHttpUser.ssl_context_factory = staticmethod(context_factory)
    original = FastHttpSession.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        every = _current.every
        if every is not None:
            sent = getattr(self, "_gatebench_sent", 0) + 1
            self._gatebench_sent = sent
            if sent % every == 0:
                kwargs["headers"] = {**(kwargs.get("headers") or {}), "Connection": "close"}
        return original(self, method, url, *args, **kwargs)

    FastHttpSession.request = request  # type: ignore[method-assign]
    _installed = True
