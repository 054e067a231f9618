"""Everything the two target apps share: routes, limits, validation, work and JSON bodies.

The Flask and FastAPI apps are thin adapters over these pure functions, so their
equivalence is structural: for the same request both call the same code and send the
same bytes. The one thing left to each app is how it waits (``time.sleep`` in a WSGI
worker, ``await asyncio.sleep`` on the event loop) and how it reads a request body.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

CONTENT_TYPE = "application/json"

# Path -> allowed methods. Both apps register their routes from this table, and the
# 405 ``Allow`` header and 404 detail are built from it.
ROUTES: dict[str, tuple[str, ...]] = {
    "/health": ("GET", "HEAD"),
    "/io": ("GET", "HEAD"),
    "/stall": ("GET", "HEAD"),
    "/cpu": ("GET", "HEAD"),
    "/json": ("GET", "HEAD"),
    "/echo": ("POST",),
}
# The long-lived and background routes (served by targets.streams on the Flask and FastAPI
# apps), path -> allowed methods as in ROUTES. "WEBSOCKET" marks a WebSocket-only path.
STREAM_ROUTES: dict[str, tuple[str, ...]] = {
    "/sse": ("GET", "HEAD"),
    "/ws": ("WEBSOCKET",),
    "/background": ("POST",),
}
# The real-I/O routes (a PostgreSQL query, a call to an upstream HTTP service), path ->
# allowed methods as in ROUTES. Served by the Flask and FastAPI apps and the FastAPI pitfall
# apps, through a driver and a pool (targets.drivers); the helpers are at the end of this file.
REAL_IO_ROUTES: dict[str, tuple[str, ...]] = {
    "/db": ("GET", "HEAD"),
    "/db/items": ("GET", "HEAD"),
    "/upstream": ("GET", "HEAD"),
}

DEFAULT_IO_MS = 50
MAX_IO_MS = 10_000
DEFAULT_STALL_MS = 1_000
MAX_STALL_MS = 30_000
DEFAULT_CPU_WORK = 1_000
MAX_CPU_WORK = 1_000_000
DEFAULT_JSON_ITEMS = 100
MAX_JSON_ITEMS = 10_000
MAX_SEED = 2**63 - 1
MAX_BODY_BYTES = 1024 * 1024
# Far below the interpreter's recursion limit: how deep json.loads can go depends on the
# stack the framework has already used, so without our own limit the apps could differ.
MAX_JSON_DEPTH = 256
BODY_CHUNK_BYTES = 64 * 1024
DISTRIBUTIONS = ("fixed", "exp")
CPU_SEED = b"gatebench"

# Longer values are refused before conversion: bounds the work per request and keeps
# int() clear of CPython's 4300-digit conversion limit.
MAX_PARAM_CHARS = 64
# Only plain values are quoted back in error details: the servers decode invalid UTF-8
# differently (werkzeug keeps "%FF", Starlette gives U+FFFD), so echoing anything else
# would make the two apps' bodies differ.
_SHOWABLE = re.compile(r"[A-Za-z0-9 .,_+-]{0,40}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def encode(obj: object) -> bytes:
    """The one JSON encoder of both apps: compact, sorted keys, ASCII, no NaN."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


@dataclass(frozen=True)
class Reply:
    """A finished response; each app turns it into its framework's Response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """A request the apps refuse; both apps install a handler that sends ``reply()``."""

    def __init__(
        self, status: int, kind: str, detail: str, param: str | None = None, **headers: str
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.param = status, kind, detail, param
        self.headers = headers

    def reply(self) -> Reply:
        body = {"error": self.kind, "param": self.param, "detail": self.detail}
        return Reply(self.status, encode(body), dict(self.headers))


def ok(body: object) -> Reply:
    return Reply(200, encode(body))


# --- errors raised by the frameworks, mapped to the same bodies --------------------------


def not_found() -> HttpError:
    def listed(table: dict[str, tuple[str, ...]]) -> str:
        return ", ".join(f"{'/'.join(methods)} {path}" for path, methods in table.items())

    # The same body on every target, so the stream and real-I/O routes are named with where
    # they live.
    return HttpError(
        404,
        "not_found",
        f"no such route; routes are: {listed(ROUTES)}; on the Flask and FastAPI targets "
        f"also: {listed(STREAM_ROUTES)}, {listed(REAL_IO_ROUTES)}",
    )


def method_not_allowed(path: str) -> HttpError:
    methods = ROUTES.get(path) or REAL_IO_ROUTES.get(path)
    if methods is None:  # the framework matched a path we do not know: treat as unknown
        return not_found()
    allowed = ", ".join(methods)
    return HttpError(405, "method_not_allowed", f"{path} allows {allowed}", Allow=allowed)


def http_error(status: int, path: str) -> HttpError:
    """The body for an HTTP error raised by a framework rather than by our code."""
    if status == 404:
        return not_found()
    if status == 405:
        return method_not_allowed(path)
    if status == 413:
        return body_too_large()
    if status >= 500:
        return HttpError(status, "internal_error", "the server failed to handle the request")
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    return HttpError(status, "http_error", f"{status} {phrase}")


# --- query parameters ---------------------------------------------------------------------


class Query(Protocol):
    """A multi-valued query mapping (werkzeug MultiDict, Starlette QueryParams)."""

    def getlist(self, key: str) -> list[str]: ...


def first(query: Query, name: str) -> str | None:
    # The first value wins. Starlette's QueryParams.get() would return the last one.
    values = query.getlist(name)
    return values[0] if values else None


def _shown(raw: str) -> str:
    return repr(raw) if _SHOWABLE.fullmatch(raw) else "a long value or one with other characters"


def _checked(raw: str, name: str, high: int, *, integer: bool) -> float:
    what = "an integer" if integer else "a number"
    unit = " (milliseconds)" if name == "ms" else ""
    rule = f"{name} must be {what} from 0 to {high}{unit}; got {_shown(raw)}"
    if _NOT_FINITE.fullmatch(raw):
        raise HttpError(422, "not_finite", rule, name)
    if len(raw) > MAX_PARAM_CHARS or not (_INTEGER if integer else _NUMBER).fullmatch(raw):
        raise HttpError(422, "invalid_integer" if integer else "invalid_number", rule, name)
    value = int(raw) if integer else float(raw) + 0.0  # + 0.0 turns -0.0 into 0.0
    if not 0 <= value <= high:  # an overflow to inf lands here too
        raise HttpError(422, "out_of_range", rule, name)
    return value


def float_param(query: Query, name: str, default: int, high: int) -> float:
    """A number from 0 to ``high``; always a float, so the body's type never varies."""
    raw = first(query, name)
    return float(default) if raw is None else float(_checked(raw, name, high, integer=False))


def int_param(query: Query, name: str, default: int, high: int) -> int:
    raw = first(query, name)
    return default if raw is None else int(_checked(raw, name, high, integer=True))


def _choice(query: Query, name: str, choices: tuple[str, ...]) -> str:
    raw = first(query, name)
    if raw is None:
        return choices[0]
    if raw not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        detail = f"{name} must be one of {allowed}; got {_shown(raw)}"
        raise HttpError(422, "invalid_choice", detail, name)
    return raw


# --- /io and /stall: planned waits --------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """What a waiting route will do: the app sleeps ``sleep_s`` then sends ``reply``."""

    sleep_s: float
    reply: Reply


def draw_sleep_ms(ms: float, dist: str, rng: random.Random | None = None) -> float:
    """The wait for one request: ``ms`` exactly, or exponential with mean ``ms``, capped."""
    if dist == "fixed" or ms == 0:
        return ms
    # The module-level functions are reseeded in each forked gunicorn worker; a private
    # Random() made at import would give every worker the same sequence.
    draw = random.expovariate(1 / ms) if rng is None else rng.expovariate(1 / ms)
    return min(draw, MAX_IO_MS)


def plan_io(query: Query) -> Wait:
    ms = float_param(query, "ms", DEFAULT_IO_MS, MAX_IO_MS)
    dist = _choice(query, "dist", DISTRIBUTIONS)
    rng = None  # unseeded: the module-level generator
    if first(query, "seed") is not None:
        rng = random.Random(int_param(query, "seed", 0, MAX_SEED))
    slept_ms = round(draw_sleep_ms(ms, dist, rng), 3)
    return Wait(slept_ms / 1000, ok({"route": "io", "ms": ms, "slept_ms": slept_ms}))


def plan_stall(query: Query) -> Wait:
    ms = float_param(query, "ms", DEFAULT_STALL_MS, MAX_STALL_MS)
    return Wait(ms / 1000, ok({"route": "stall", "ms": ms}))


# --- /cpu, /json, /echo -------------------------------------------------------------------


def cpu_digest(work: int) -> str:
    """``work`` rounds of sha256 chained from ``CPU_SEED``; hex of the last value."""
    value = CPU_SEED
    for _ in range(work):
        value = hashlib.sha256(value).digest()
    return value.hex()


def cpu(query: Query) -> Reply:
    work = int_param(query, "work", DEFAULT_CPU_WORK, MAX_CPU_WORK)
    return ok({"route": "cpu", "work": work, "digest": cpu_digest(work)})


def json_items(count: int) -> list[dict[str, object]]:
    return [
        {"id": i, "name": f"item-{i}", "price": round(i * 1.25, 2), "tags": ["a", "b"],
         "active": i % 2 == 0}
        for i in range(count)
    ]  # fmt: skip


def json_payload(query: Query) -> Reply:
    count = int_param(query, "items", DEFAULT_JSON_ITEMS, MAX_JSON_ITEMS)
    return ok({"route": "json", "count": count, "items": json_items(count)})


def body_too_large() -> HttpError:
    detail = f"request body must be at most {MAX_BODY_BYTES} bytes (1 MiB)"
    return HttpError(413, "body_too_large", detail)


def check_declared_length(content_length: str | None) -> None:
    """Refuse early when the Content-Length header already says the body is too large."""
    declared = content_length or ""
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise body_too_large()


def check_body_size(size: int) -> None:
    """Called as chunks arrive, so a chunked body is cut off at the limit too."""
    if size > MAX_BODY_BYTES:
        raise body_too_large()


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf, which encode() cannot send back
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether lists/objects nest more than ``limit`` deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def echo(raw: bytes) -> Reply:
    too_deep = HttpError(
        400, "invalid_json", f"request body nests deeper than {MAX_JSON_DEPTH} levels"
    )
    try:
        text = raw.decode("utf-8")
        parsed = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise HttpError(400, "invalid_json", "request body is not UTF-8") from None
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise HttpError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    # Counting brackets is cheap and bounds the depth, so most bodies skip the walk.
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets > MAX_JSON_DEPTH and _depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise too_deep
    return ok({"route": "echo", "echo": parsed})


def health() -> Reply:
    return ok({"status": "ok"})


class QueryArgs(dict[str, list[str]]):
    """A parsed query string with the ``getlist`` that ``Query`` asks for (raw apps)."""

    def getlist(self, key: str) -> list[str]:
        return self.get(key, [])


def parse_query(query_string: str) -> QueryArgs:
    """'&' only (no ';'), '+' is a space, '?ms' gives ms='', as werkzeug and Starlette parse."""
    return QueryArgs(urllib.parse.parse_qs(query_string, keep_blank_values=True))


# --- /db, /db/items, /upstream: real I/O through a driver and a pool ----------------------
#
# What a client sees is decided here; targets.drivers only runs the query or the call and
# turns the driver's exceptions into the errors below. Parameters are checked before any
# connection is asked for, so bad input gets its 422 whether or not a database is there.

# The environment the harness gives a target server (harness: Target.environment).
ENV_DATABASE_DSN = "GATEBENCH_DATABASE_DSN"  # libpq conninfo
ENV_UPSTREAM_URL = "GATEBENCH_UPSTREAM_URL"  # http://HOST:PORT, no trailing slash
ENV_POOL = "GATEBENCH_POOL"  # pool size per server process (database and upstream client)
ENV_POOL_TIMEOUT_S = "GATEBENCH_POOL_TIMEOUT_S"  # how long a request waits for a connection
ENV_HTTP_CLIENT = "GATEBENCH_HTTP_CLIENT"  # the ASGI app's upstream client: aiohttp or httpx
HTTP_CLIENTS = ("aiohttp", "httpx")  # the first is the default
DEFAULT_POOL = 10
DEFAULT_POOL_TIMEOUT_S = 10.0
# A response header that names a failure for the load generator (harness.loadgen.recorder).
FAILURE_HEADER = "X-Gatebench-Failure"
POOL_TIMEOUT = "pool timeout"
DATABASE_UNAVAILABLE = "database unavailable"
UPSTREAM_UNAVAILABLE = "upstream unavailable"

DEFAULT_DB_MS = 50
MAX_DB_MS = 10_000
DEFAULT_UPSTREAM_MS = 50
MAX_UPSTREAM_MS = 10_000
ITEM_COUNT = 10_000  # the seeded table: items(id, name, value), ids 1..ITEM_COUNT

# pg_sleep runs inside PostgreSQL, on the connection: the wait holds a pooled connection as
# a real slow query does. pg_sleep returns void, which IS NOT NULL; the index finds one row,
# so it sleeps once.
DB_SQL = "SELECT id, name, value FROM items WHERE id = 1 AND pg_sleep(%s) IS NOT NULL"
ITEM_SQL = "SELECT id, name, value FROM items WHERE id = %s"


class Failure(HttpError):
    """A failure of the server's own resources (pool, database, upstream), named by
    ``FAILURE_HEADER`` so the load generator counts it by kind, not as a bare HTTP status.

    Its body is ``{"error": kind}`` and nothing else: no driver message, which would differ
    between the sync and async drivers."""

    def __init__(self, kind: str, status: int = 503) -> None:
        super().__init__(status, kind, kind)

    def reply(self) -> Reply:
        return Reply(self.status, encode({"error": self.kind}), {FAILURE_HEADER: self.kind})


def pool_timeout() -> Failure:
    return Failure(POOL_TIMEOUT)


def database_unavailable() -> Failure:
    return Failure(DATABASE_UNAVAILABLE)


def upstream_unavailable() -> Failure:
    """The upstream refused, failed or answered other than 200: a bad gateway."""
    return Failure(UPSTREAM_UNAVAILABLE, 502)


def not_configured(variable: str) -> HttpError:
    detail = (
        f"{variable} is not set: the harness sets it for the scenarios that need a database "
        "or an upstream service"
    )
    return HttpError(503, "not_configured", detail)


@dataclass(frozen=True)
class RealIoSettings:
    """A server process's real-I/O settings, read from its environment at first use."""

    database_dsn: str | None
    upstream_url: str | None
    pool: int = DEFAULT_POOL
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S
    http_client: str = HTTP_CLIENTS[0]  # the async upstream client (the sync one is httpx's)

    def dsn(self) -> str:
        if not self.database_dsn:
            raise not_configured(ENV_DATABASE_DSN)
        return self.database_dsn

    def upstream(self) -> str:
        if not self.upstream_url:
            raise not_configured(ENV_UPSTREAM_URL)
        return self.upstream_url


def real_io_settings(environ: Mapping[str, str]) -> RealIoSettings:
    """The settings in ``environ``; an HttpError (503 not_configured) for a bad pool value."""
    pool_text = environ.get(ENV_POOL, "").strip() or str(DEFAULT_POOL)
    if not (pool_text.isascii() and pool_text.isdigit()) or int(pool_text) < 1:
        raise HttpError(503, "not_configured", f"{ENV_POOL} must be a whole number, at least 1")
    timeout_text = environ.get(ENV_POOL_TIMEOUT_S, "").strip() or str(DEFAULT_POOL_TIMEOUT_S)
    try:
        timeout_s = float(timeout_text)
    except ValueError:
        timeout_s = math.nan
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise HttpError(
            503, "not_configured", f"{ENV_POOL_TIMEOUT_S} must be a number of seconds above 0"
        )
    client = environ.get(ENV_HTTP_CLIENT, "").strip() or HTTP_CLIENTS[0]
    if client not in HTTP_CLIENTS:
        raise HttpError(
            503, "not_configured", f"{ENV_HTTP_CLIENT} must be one of {', '.join(HTTP_CLIENTS)}"
        )
    return RealIoSettings(
        database_dsn=environ.get(ENV_DATABASE_DSN) or None,
        upstream_url=(environ.get(ENV_UPSTREAM_URL) or "").rstrip("/") or None,
        pool=int(pool_text),
        pool_timeout_s=timeout_s,
        http_client=client,
    )


Row = tuple[object, ...]


@dataclass(frozen=True)
class DbQuery:
    """One statement for a pooled connection, and how to answer from its first row."""

    route: str  # "db" or "items"
    sql: str
    params: tuple[object, ...]
    value: int  # the wait in ms (db) or the item id (items)

    def reply(self, row: Row | None) -> Reply:
        if row is None:  # no such item (cannot happen for /db: id 1 is seeded)
            raise no_such_item(self.value) if self.route == "items" else database_unavailable()
        item = {"id": row[0], "name": row[1], "value": row[2]}
        if self.route == "db":
            return ok({**item, "waited_ms": self.value})
        return ok(item)


def plan_db(query: Query) -> DbQuery:
    """``GET /db?ms=N``: one query that waits N ms inside PostgreSQL, then returns row 1."""
    ms = int_param(query, "ms", DEFAULT_DB_MS, MAX_DB_MS)
    return DbQuery("db", DB_SQL, (ms / 1000,), ms)


def no_such_item(item_id: int) -> HttpError:
    detail = f"no item with id {item_id}; ids are 1 to {ITEM_COUNT}"
    return HttpError(404, "no_such_item", detail, "id")


def plan_item(query: Query) -> DbQuery:
    """``GET /db/items?id=N``: an indexed lookup of one row. ``id`` is required; an integer
    outside 1..ITEM_COUNT is an item that does not exist (404), anything else a 422."""
    raw = first(query, "id")
    rule = f"id must be an integer from 1 to {ITEM_COUNT}"
    if raw is None:
        raise HttpError(422, "missing", f"{rule}; got none", "id")
    if _NOT_FINITE.fullmatch(raw):
        raise HttpError(422, "not_finite", f"{rule}; got {_shown(raw)}", "id")
    if len(raw) > MAX_PARAM_CHARS or not _INTEGER.fullmatch(raw):
        raise HttpError(422, "invalid_integer", f"{rule}; got {_shown(raw)}", "id")
    item_id = int(raw)
    if not 1 <= item_id <= ITEM_COUNT:
        raise no_such_item(item_id)
    return DbQuery("items", ITEM_SQL, (item_id,), item_id)


def plan_upstream(query: Query) -> int:
    """``GET /upstream?ms=N``: the wait to ask the upstream for, in ms."""
    return int_param(query, "ms", DEFAULT_UPSTREAM_MS, MAX_UPSTREAM_MS)


def upstream_url(base_url: str, ms: int) -> str:
    return f"{base_url.rstrip('/')}/wait?ms={ms}"


def upstream_reply(status: int, body: bytes) -> Reply:
    """The upstream's answer passed through; anything but a 200 is a bad gateway (502)."""
    if status != 200:
        raise upstream_unavailable()
    return Reply(200, body)
