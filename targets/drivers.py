"""The drivers and pools behind the real-I/O routes (``/db``, ``/db/items``, ``/upstream``).

What a client sees is decided in ``targets.common`` (parameters, SQL text, bodies, errors);
this module only runs a ``common.DbQuery`` on a pooled connection or calls the upstream, and
turns the drivers' exceptions into ``common``'s errors. Two backends, as a user would choose:

- ``SyncBackend`` (Flask on every WSGI server, and the FastAPI pitfall apps): psycopg 3's
  ``psycopg_pool.ConnectionPool`` and an ``httpx.Client``. A request holds a pooled connection
  while it waits, like the thread (or greenlet) that runs it.
- ``AsyncBackend`` (the FastAPI app): ``psycopg_pool.AsyncConnectionPool`` and an
  ``aiohttp.ClientSession`` (``GATEBENCH_HTTP_CLIENT=httpx``: an ``httpx.AsyncClient``, target
  ``fastapi-uvicorn-httpx``). psycopg's async pool rather than asyncpg: the same driver, SQL
  text, parameter binding and row types as the sync side, so the WSGI/ASGI comparison changes
  one thing (sync vs async) and not the driver too; asyncpg is faster per query, which would be
  a second difference to explain. aiohttp rather than httpx by default: measured here with 100
  concurrent calls through a 10-connection client, ``httpx.AsyncClient`` (httpcore 1.0.9)
  spent 5.1 ms of CPU per call (12.6 ms with 100 connections) against aiohttp's 0.15 ms, its
  pool rechecking every connection on each assignment (encode/httpx#3215, open). With httpx the
  ASGI app's upstream cells would measure that client, not the interface; the httpx target
  keeps the difference visible as a factor of its own.

Both pools are fixed-size (``min_size = max_size = GATEBENCH_POOL``: what the Little's-law bound
assumes, and no connect inside a measured cell), per server process, and made at first use
inside the process that serves (gunicorn forks its workers after importing the app; an event
loop's pool must be made in the running loop). The settings come from the environment then
(``common.real_io_settings``). The drivers are imported at first use too: a target that never
serves these routes pays nothing for them, and under gunicorn's gevent worker psycopg is
imported after the monkey-patching, so it picks its gevent-friendly wait function.

Errors: no connection within ``GATEBENCH_POOL_TIMEOUT_S`` is ``pool timeout`` (503) while
other requests hold connections; when none does, the pool could not connect at all, and the
database is ``unavailable`` (503), as it is for any error of the query itself. The upstream
unreachable, failing or slow beyond ``UPSTREAM_TIMEOUT_S``: 502; its pool exhausted: 503
``pool timeout``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from targets import common

if TYPE_CHECKING:
    import aiohttp
    import httpx
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

# Longer than the longest wait a route accepts (10 s), so only a stuck upstream times out.
UPSTREAM_TIMEOUT_S = 30.0


def _pool_kwargs(settings: common.RealIoSettings) -> dict[str, Any]:
    return {
        "conninfo": settings.dsn(),
        "min_size": settings.pool,
        "max_size": settings.pool,
        "timeout": settings.pool_timeout_s,
        # One statement per request: no transaction to commit or roll back on return.
        "kwargs": {"autocommit": True},
        "open": False,
        "name": "gatebench",
    }


def _limits(settings: common.RealIoSettings) -> dict[str, Any]:
    import httpx

    return {
        "limits": httpx.Limits(
            max_connections=settings.pool, max_keepalive_connections=settings.pool
        ),
        "timeout": httpx.Timeout(UPSTREAM_TIMEOUT_S, pool=settings.pool_timeout_s),
    }


class SyncBackend:
    """A ConnectionPool and an httpx.Client per process, made at first use (thread-safe)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ  # None: os.environ at first use
        self._lock = threading.Lock()
        self._pid = 0  # the process the pool and client belong to
        self._settings: common.RealIoSettings | None = None
        self._pool: ConnectionPool | None = None
        self._client: httpx.Client | None = None
        self._held = 0  # connections requests of this process hold now
        self._held_lock = threading.Lock()

    def settings(self) -> common.RealIoSettings:
        with self._lock:
            self._check_process()
            if self._settings is None:
                self._settings = common.real_io_settings(
                    os.environ if self._environ is None else self._environ
                )
            return self._settings

    def _check_process(self) -> None:
        # Made before a fork (gunicorn --preload, say): the child must not share the parent's
        # sockets; it makes its own (the parent's objects are dropped, not closed).
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._settings, self._pool, self._client, self._held = None, None, None, 0

    def pool(self) -> ConnectionPool:
        settings = self.settings()
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                pool: ConnectionPool = ConnectionPool(**_pool_kwargs(settings))
                pool.open(wait=False)  # connections open in the background
                self._pool = pool
            return self._pool

    def client(self) -> httpx.Client:
        settings = self.settings()
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(**_limits(settings))
            return self._client

    def query(self, plan: common.DbQuery) -> common.Reply:
        """Run ``plan`` on a pooled connection; its reply, or a ``common`` error."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self.pool()
        try:
            with pool.connection() as conn:
                self._holding(+1)
                try:
                    row = conn.execute(plan.sql, plan.params).fetchone()
                finally:
                    self._holding(-1)
        except PoolTimeout:
            raise common.pool_timeout() if self._held else common.database_unavailable() from None
        except psycopg.Error:
            raise common.database_unavailable() from None
        return plan.reply(row)

    def _holding(self, change: int) -> None:
        with self._held_lock:  # += is not atomic across threads
            self._held += change

    def call(self, ms: int) -> common.Reply:
        """GET the upstream's ``/wait?ms=N`` through the pooled client; its answer passed on."""
        import httpx

        url = common.upstream_url(self.settings().upstream(), ms)
        try:
            response = self.client().get(url)
        except httpx.PoolTimeout:
            raise common.pool_timeout() from None
        except httpx.HTTPError:
            raise common.upstream_unavailable() from None
        return common.upstream_reply(response.status_code, response.content)

    def close(self) -> None:
        with self._lock:
            pool, client = self._pool, self._client
            self._pool = self._client = None
        if pool is not None:
            pool.close()
        if client is not None:
            client.close()


class AsyncBackend:
    """An AsyncConnectionPool and an httpx.AsyncClient, made at first use in the running
    event loop (one loop per server process)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._settings: common.RealIoSettings | None = None
        self._lock: asyncio.Lock | None = None  # made in the loop, at first use
        self._pool: AsyncConnectionPool | None = None
        self._client: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._held = 0

    def settings(self) -> common.RealIoSettings:
        if self._settings is None:
            self._settings = common.real_io_settings(
                os.environ if self._environ is None else self._environ
            )
        return self._settings

    async def pool(self) -> AsyncConnectionPool:
        settings = self.settings()
        if self._pool is not None:
            return self._pool
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._pool is None:
                from psycopg_pool import AsyncConnectionPool

                pool: AsyncConnectionPool = AsyncConnectionPool(**_pool_kwargs(settings))
                await pool.open(wait=False)
                self._pool = pool
            return self._pool

    def client(self) -> httpx.AsyncClient:
        settings = self.settings()
        if self._client is None:  # no await in between: no other request can interleave
            import httpx

            self._client = httpx.AsyncClient(**_limits(settings))
        return self._client

    async def query(self, plan: common.DbQuery) -> common.Reply:
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = await self.pool()
        try:
            async with pool.connection() as conn:
                self._held += 1
                try:
                    cursor = await conn.execute(plan.sql, plan.params)
                    row = await cursor.fetchone()
                finally:
                    self._held -= 1
        except PoolTimeout:
            raise common.pool_timeout() if self._held else common.database_unavailable() from None
        except psycopg.Error:
            raise common.database_unavailable() from None
        return plan.reply(row)

    async def call(self, ms: int) -> common.Reply:
        settings = self.settings()
        url = common.upstream_url(settings.upstream(), ms)
        if settings.http_client == "httpx":
            return await self._call_httpx(url)
        return await self._call_aiohttp(url, settings)

    async def _call_httpx(self, url: str) -> common.Reply:
        import httpx

        try:
            response = await self.client().get(url)
        except httpx.PoolTimeout:
            raise common.pool_timeout() from None
        except httpx.HTTPError:
            raise common.upstream_unavailable() from None
        return common.upstream_reply(response.status_code, response.content)

    async def _call_aiohttp(self, url: str, settings: common.RealIoSettings) -> common.Reply:
        import aiohttp

        if self._session is None:  # no await in between: no other request can interleave
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=settings.pool),
                # connect: waiting for a free pooled connection (or making one), as httpx's pool
                timeout=aiohttp.ClientTimeout(
                    total=UPSTREAM_TIMEOUT_S, connect=settings.pool_timeout_s
                ),
            )
        try:
            async with self._session.get(url) as response:
                body = await response.read()
        except aiohttp.ConnectionTimeoutError:
            raise common.pool_timeout() from None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            raise common.upstream_unavailable() from None
        return common.upstream_reply(response.status, body)

    async def close(self) -> None:
        pool, client, session = self._pool, self._client, self._session
        self._pool, self._client, self._session = None, None, None
        if session is not None:
            await session.close()
        if pool is not None:
            await pool.close()
        if client is not None:
            await client.aclose()
