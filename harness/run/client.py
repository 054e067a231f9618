"""The orchestrator's one HTTP client: a single request in a target's own protocol.

Readiness (``servers.wait_ready``) and the verify gate ask a target in the protocol its
clients will use in the run, so that a server which would not speak it fails before anything
is measured. Plain HTTP/1.1 keeps ``http.client`` with one connection per request, exactly
as before HTTP/2 and TLS came in (the verify gate's timings of those targets do not move);
HTTP/1.1 over TLS is the same with a context trusting the run's CA; HTTP/2 goes through
httpx: h2c with prior knowledge over plain TCP (an h2c server need not speak HTTP/1.1 at
all), h2 by ALPN over TLS, where the server's choice shows in ``Reply.http_version``.

Every failure to get an answer (refused, reset, TLS verification, protocol error) is a
``FetchError``, an ``OSError``, so callers catch one thing and name the cause it carries.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from pathlib import Path

import httpx

HTTP_1_1 = "HTTP/1.1"
HTTP_2 = "HTTP/2"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str  # "" when the answer has none
    body: bytes
    http_version: str  # HTTP_1_1 or HTTP_2: what the answer really came over


class FetchError(OSError):
    """No answer: the request could not be sent or its answer not read."""


def _context(ca_file: Path | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """A client context trusting only ``ca_file`` (the system's CAs when None), offering
    ``alpn``."""
    try:
        ca_pem = None if ca_file is None else ca_file.read_text()
    except OSError as exc:
        raise FetchError(f"the CA file {ca_file} cannot be read ({exc})") from exc
    return _context_for(ca_pem, alpn)


@functools.lru_cache(maxsize=16)
def _context_for(ca_pem: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
    # Cached by the CA's text, not its path (a new certificate may be written where an old one
    # was): building a context costs milliseconds, which the verify gate would otherwise
    # count in every request's overhead.
    context = ssl.create_default_context(cadata=ca_pem)
    context.set_alpn_protocols(list(alpn))
    return context


def fetch(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    http: str = "1.1",
    ca_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Reply:
    """``method path`` (path with its query) to the server at ``url`` (``http(s)://host:port``),
    over HTTP/1.1 or, with ``http="2"``, HTTP/2. An https URL is verified against ``ca_file``
    (the system's CAs when None, which a run's private CA is not among). Raises FetchError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url}: expected http:// or https://")
    if http == "2":
        return _fetch_h2(url, method, path, body, headers, ca_file, timeout_s)
    if http != "1.1":
        raise ValueError(f"http {http!r}: expected '1.1' or '2'")
    host, port = parts.hostname or "", parts.port
    conn: HTTPConnection
    if parts.scheme == "https":
        context = _context(ca_file, ("http/1.1",))
        conn = HTTPSConnection(host, port, timeout=timeout_s, context=context)
    else:
        conn = HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        content_type = response.getheader("Content-Type", "") or ""
        return Reply(response.status, content_type, response.read(), HTTP_1_1)
    except (OSError, HTTPException) as exc:
        raise FetchError(f"{method} {url}{path}: no answer ({exc!r})") from exc
    finally:
        conn.close()


def _fetch_h2(
    url: str,
    method: str,
    path: str,
    body: bytes | None,
    headers: Mapping[str, str] | None,
    ca_file: Path | None,
    timeout_s: float,
) -> Reply:
    with _httpx_client(url, "2", ca_file, timeout_s) as client:
        return _request(client, url, method, path, body, headers)


def _httpx_client(url: str, http: str, ca_file: Path | None, timeout_s: float) -> httpx.Client:
    """One connection to ``url`` in ``http``. Over TLS the server picks by ALPN (h2 offered
    first for "2"), so one that only speaks HTTP/1.1 answers over it and the caller sees that
    in ``Reply.http_version``; in plain text HTTP/2 needs prior knowledge."""
    tls, h2 = url.startswith("https://"), http == "2"
    return httpx.Client(
        http1=tls or not h2,
        http2=h2,
        verify=_context(ca_file, ("h2", "http/1.1") if h2 else ("http/1.1",)) if tls else False,
        timeout=timeout_s,
        trust_env=False,  # no proxy from the environment between us and the target
        limits=httpx.Limits(max_connections=1),
    )


def _request(
    client: httpx.Client,
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    try:
        response = client.request(method, url + path, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise FetchError(f"{method} {url}{path}: no answer ({exc!r})") from exc
    version = HTTP_2 if response.http_version == "HTTP/2" else HTTP_1_1
    content_type = response.headers.get("content-type", "")
    return Reply(response.status_code, content_type, response.content, version)


Send = Callable[[str, str], Reply]  # (method, path) -> the reply


@contextlib.contextmanager
def kept_connection(
    url: str, *, http: str = "1.1", ca_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Iterator[Send]:  # fmt: skip
    """A sender for timing requests as a run's users send them: over TLS or HTTP/2 on one
    kept connection, so the TLS handshake (milliseconds in Python) is paid once, before the
    first request, as the users pay it once per connection; plain HTTP/1.1 keeps ``fetch``'s
    new connection per request (a loopback TCP connect is a tenth of a millisecond, and the
    verify gate's timings of those targets stay what they were)."""
    if not url.startswith("https://") and http == "1.1":
        yield lambda method, path: fetch(url, method, path, http=http, timeout_s=timeout_s)
        return
    with _httpx_client(url, http, ca_file, timeout_s) as client:
        yield lambda method, path: _request(client, url, method, path)
