"""The target table: one row per named target (app, server, settings, capacity).

A target is what gets benchmarked: an app import string served by a server with a
worker model. Each row declares how it holds concurrent requests (``concurrency``), from
which its capacity (``slots``) follows for the Little's-law bound. Adding a target is
adding a row to ``TARGETS``; adding a server is adding a command builder to
``SERVER_COMMANDS``. The runner never changes.

A row also says how clients reach it: its HTTP version (``http``: "1.1", or "2" for a server
that speaks HTTP/2, h2c with prior knowledge over plain TCP) and whether it always serves TLS
(``tls``: HTTP/2 over TLS is negotiated by ALPN inside the handshake, so an h2-over-TLS row
cannot be reached in plain text). Every server builder also takes the run's certificate
(``TlsFiles``) to serve any row over TLS when a scenario asks for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from targets import common

# How a target holds requests at once, and so what its slots are:
#   process      one request per worker process (gunicorn sync)        slots = workers
#   threads      one request per thread                                 slots = workers x threads
#   event-loop   any number of waiting requests per process (asyncio)   slots = unbounded
#   greenlets    any number per process (gevent, monkey-patched sleep)  slots = unbounded
#   blocked-loop an event loop whose handlers block it: one at a time   slots = workers
CONCURRENCY = ("process", "threads", "event-loop", "greenlets", "blocked-loop")
# The HTTP versions a row can speak (the same values as harness.loadgen.link.HTTP_VERSIONS).
HTTP_VERSIONS = ("1.1", "2")

# Threads that FastAPI/Starlette give plain `def` endpoints (anyio's default limiter).
ANYIO_THREADS = 40
# The server's CPU budget under the default pinning: half of the usable CPUs.
SERVER_CPU_BUDGET = max(1, len(os.sched_getaffinity(0)) // 2)
MULTI_WORKERS = max(2, SERVER_CPU_BUDGET)


@dataclass(frozen=True)
class Target:
    name: str
    app: str  # import string, "module:attribute"
    server: str  # key of SERVER_COMMANDS
    framework: str  # "flask", "fastapi", "starlette", "django", or "none" for a raw app
    interface: str  # "wsgi" or "asgi"
    worker_class: str  # server-specific worker model: "sync", "gthread", "gevent", "asyncio", ...
    workers: int
    threads: int  # threads per worker; 1 where requests do not get a thread each
    concurrency: str  # one of CONCURRENCY
    description: str
    # Connections per server process of the real-I/O routes' database pool and upstream
    # client (GATEBENCH_POOL); None: the app does not serve those routes (common.REAL_IO_ROUTES).
    pool: int | None = None
    # The ASGI app's upstream client (common.HTTP_CLIENTS; None: the app's default, aiohttp).
    http_client: str | None = None
    # The HTTP version clients speak to it (HTTP_VERSIONS): "2" is h2c with prior knowledge
    # over plain TCP, h2 by ALPN over TLS.
    http: str = "1.1"
    # Always served over TLS (with the run's certificate), whatever the scenario asks.
    tls: bool = False

    def __post_init__(self) -> None:
        if self.concurrency not in CONCURRENCY:
            raise ValueError(f"target {self.name}: concurrency {self.concurrency!r} unknown")
        if self.http not in HTTP_VERSIONS:
            raise ValueError(
                f"target {self.name}: http {self.http!r} unknown; one of {', '.join(HTTP_VERSIONS)}"
            )
        if not isinstance(self.tls, bool):
            raise ValueError(f"target {self.name}: tls must be True or False, got {self.tls!r}")
        if self.pool is not None and self.pool < 1:
            raise ValueError(f"target {self.name}: pool must be at least 1")

    @property
    def slots(self) -> int | None:
        """Requests the server can hold at once; None when unbounded."""
        if self.concurrency in ("event-loop", "greenlets"):
            return None
        if self.concurrency == "threads":
            return self.workers * self.threads
        return self.workers

    @property
    def tls_on_demand(self) -> bool:
        """Whether gatebench can serve it over TLS when a scenario asks (settings "tls"): it
        starts the server, with the run's certificate."""
        return True

    @property
    def serves_real_io(self) -> bool:
        """Whether the app serves /db, /db/items and /upstream (common.REAL_IO_ROUTES)."""
        return self.pool is not None

    @property
    def pool_total(self) -> int | None:
        """Connections of the whole target: workers x pool (None: no real-I/O routes)."""
        return None if self.pool is None else self.workers * self.pool

    @property
    def threads_configurable(self) -> bool:
        return (self.server, self.worker_class) in (("gunicorn", "gthread"), ("granian", "wsgi"))

    def command(self, host: str, port: int, tls: TlsFiles | None = None) -> list[str]:
        """The server's argv, bound to host:port, serving TLS with ``tls`` when given. Never a
        shell string."""
        return SERVER_COMMANDS[self.server](self, host, port, tls)

    def with_settings(
        self, workers: int | None = None, threads: int | None = None, pool: int | None = None
    ) -> Target:
        """A copy with other worker/thread counts or pool size (a one-run override)."""
        if threads is not None and threads != self.threads and not self.threads_configurable:
            raise ValueError(
                f"target {self.name}: its thread count is not a server setting; "
                "only gthread workers and granian's WSGI threads take a thread count"
            )
        if pool is not None and not self.serves_real_io:
            raise ValueError(
                f"target {self.name}: it has no pool; only targets serving the real-I/O routes "
                f"({', '.join(common.REAL_IO_ROUTES)}) take a pool size"
            )
        if (workers is not None and workers < 1) or (threads is not None and threads < 1):
            raise ValueError(f"target {self.name}: workers and threads must be at least 1")
        if pool is not None and pool < 1:
            raise ValueError(f"target {self.name}: pool must be at least 1")
        changed = replace(
            self,
            workers=self.workers if workers is None else workers,
            threads=self.threads if threads is None else threads,
            pool=self.pool if pool is None else pool,
        )
        if changed == self:
            return self
        note = f"overridden for this run: {changed.workers} workers x {changed.threads} threads"
        if changed.pool != self.pool:
            note += f", pool {changed.pool} per worker"
        return replace(changed, description=f"{self.description} ({note})")

    def environment(
        self, database_dsn: str | None = None, upstream_url: str | None = None
    ) -> dict[str, str]:
        """The GATEBENCH_* variables to start this target's server with (merged over the
        harness's own environment by the caller). Empty for a target without the real-I/O
        routes; a DSN or URL that is None or empty is left out (the route then answers 503
        naming the variable)."""
        if self.pool is None:
            return {}
        env = {common.ENV_POOL: str(self.pool)}
        if database_dsn:
            env[common.ENV_DATABASE_DSN] = database_dsn
        if upstream_url:
            env[common.ENV_UPSTREAM_URL] = upstream_url.rstrip("/")
        if self.http_client is not None:
            env[common.ENV_HTTP_CLIENT] = self.http_client
        return env

    def settings(self) -> dict[str, object]:
        """What the manifest records about this target."""
        return {
            "name": self.name,
            "app": self.app,
            "server": self.server,
            "framework": self.framework,
            "interface": self.interface,
            "worker_class": self.worker_class,
            "workers": self.workers,
            "threads": self.threads,
            "concurrency": self.concurrency,
            "slots": self.slots,
            "pool": self.pool,
            "http_client": self.http_client,
            "http": self.http,
            "tls": self.tls,
            "description": self.description,
        }


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files a server serves TLS with: its certificate chain and its private key."""

    certfile: Path
    keyfile: Path


GUNICORN_WORKER_CLASSES = {
    "sync": "sync",
    "gthread": "gthread",
    "gevent": "gevent",
    "uvicorn": "uvicorn_worker.UvicornWorker",
}


def _gunicorn(target: Target, host: str, port: int, tls: TlsFiles | None) -> list[str]:
    argv = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(target.workers),
        "--worker-class", GUNICORN_WORKER_CLASSES[target.worker_class],
        "--backlog", "4096",
        "--timeout", "120",
        "--graceful-timeout", "3",
        "--log-level", "warning",
    ]  # fmt: skip
    if target.worker_class == "gthread":
        argv += ["--threads", str(target.threads)]
    if target.worker_class == "gevent":
        argv += ["--worker-connections", "10000"]
    if tls is not None:
        argv += ["--certfile", str(tls.certfile), "--keyfile", str(tls.keyfile)]
    return [*argv, target.app]


def _uvicorn(target: Target, host: str, port: int, tls: TlsFiles | None) -> list[str]:
    argv = [
        sys.executable, "-m", "uvicorn",
        "--host", host,
        "--port", str(port),
        "--workers", str(target.workers),
        "--backlog", "4096",
        "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    if tls is not None:
        argv += ["--ssl-certfile", str(tls.certfile), "--ssl-keyfile", str(tls.keyfile)]
    return [*argv, target.app]


def _twisted_quoted(text: str) -> str:
    """``text`` as a value of a Twisted endpoint string, where ``:`` and ``=`` separate."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _daphne(target: Target, host: str, port: int, tls: TlsFiles | None) -> list[str]:
    argv = [sys.executable, "-m", "daphne"]
    if tls is None:
        argv += ["--bind", host, "--port", str(port)]
    else:  # daphne has no TLS options: a Twisted endpoint string (needs pyOpenSSL)
        endpoint = (
            f"ssl:port={port}:interface={_twisted_quoted(host)}"
            f":privateKey={_twisted_quoted(str(tls.keyfile))}"
            f":certKey={_twisted_quoted(str(tls.certfile))}"
        )
        argv += ["--endpoint", endpoint]
    return [*argv, "--verbosity", "0", target.app]


def _granian(target: Target, host: str, port: int, tls: TlsFiles | None) -> list[str]:
    argv = [
        sys.executable, "-m", "granian",
        "--host", host,
        "--port", str(port),
        "--interface", target.interface,
        "--workers", str(target.workers),
        "--backlog", "4096",
        "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    if target.interface == "wsgi":
        argv += ["--blocking-threads", str(target.threads)]
    if target.http == "2":  # granian's "auto" would serve HTTP/1.1 to h2c clients
        argv += ["--http", "2"]
    if tls is not None:
        argv += ["--ssl-certificate", str(tls.certfile), "--ssl-keyfile", str(tls.keyfile)]
    return [*argv, target.app]


def _hypercorn(target: Target, host: str, port: int, tls: TlsFiles | None) -> list[str]:
    # Hypercorn serves HTTP/1.1 and h2c (prior knowledge) on the same port, and offers h2 and
    # http/1.1 by ALPN over TLS: one command for every HTTP version. No access log by default.
    argv = [
        sys.executable, "-m", "hypercorn",
        "--bind", f"{host}:{port}",
        "--workers", str(target.workers),
        "--backlog", "4096",
        "--log-level", "warning",
    ]  # fmt: skip
    if tls is not None:
        argv += ["--certfile", str(tls.certfile), "--keyfile", str(tls.keyfile)]
    return [*argv, target.app]


SERVER_COMMANDS: dict[str, Callable[[Target, str, int, TlsFiles | None], list[str]]] = {
    "gunicorn": _gunicorn,
    "uvicorn": _uvicorn,
    "daphne": _daphne,
    "granian": _granian,
    "hypercorn": _hypercorn,
}

FLASK_APP = "targets.flask_app:app"
FASTAPI_APP = "targets.fastapi_app:app"
DEF_APP = "targets.fastapi_pitfalls:sync_def_app"
BLOCKING_APP = "targets.fastapi_pitfalls:blocking_app"
# The apps that serve the real-I/O routes (common.REAL_IO_ROUTES); every row of one of these
# declares its pool, every other row none (tests/test_real_io_routes.py holds the table to it).
REAL_IO_APPS = (FLASK_APP, FASTAPI_APP, DEF_APP, BLOCKING_APP)
# Pool per process of an app whose process holds any number of requests at once (an event
# loop, gevent's greenlets): a usual production default (SQLAlchemy's pool_size, too), the
# same for asyncio and gevent so that the two cooperative models compare on equal pools.
COOPERATIVE_POOL = 10


# One row per target, every field by name. Names never carry a number that depends on the
# machine (CPU count): `compare` matches targets across runs by name, and a worker count
# that follows the CPU budget stays in the settings, which the manifest records.
# fmt: off
_ROWS = (
    # WSGI
    Target(
        name="flask-gunicorn-sync",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="gunicorn", worker_class="sync", workers=4, threads=1, concurrency="process",
        description="Flask on gunicorn, 4 sync workers: one request per worker at a time",
        pool=1,  # = threads per worker: the pool is never the limit
    ),
    Target(
        name="flask-gunicorn-gthread",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="gunicorn", worker_class="gthread", workers=4, threads=8, concurrency="threads",
        description="Flask on gunicorn, 4 gthread workers x 8 threads: 32 requests at a time",
        pool=8,
    ),
    Target(
        name="flask-gunicorn-gthread-smallpool",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="gunicorn", worker_class="gthread", workers=4, threads=8, concurrency="threads",
        description="Flask on gunicorn, 4 gthread workers x 8 threads, a pool of 2 per worker: "
                    "32 requests at a time, 8 of them in the database",
        pool=2,
    ),
    Target(
        name="flask-gunicorn-gevent",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="gunicorn", worker_class="gevent", workers=4, threads=1, concurrency="greenlets",
        description="Flask on gunicorn, 4 gevent workers: time.sleep patched to yield",
        # Greenlets hold any number of requests, like an event loop: the same pool per
        # process as the FastAPI targets (psycopg waits cooperatively under gevent).
        pool=COOPERATIVE_POOL,
    ),
    Target(
        name="flask-granian",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="granian", worker_class="wsgi", workers=1, threads=32, concurrency="threads",
        description="Flask on granian (WSGI), 1 worker x 32 blocking threads",
        pool=32,
    ),
    Target(
        name="django-gunicorn-sync",
        app="targets.django_app.wsgi:application", framework="django", interface="wsgi",
        server="gunicorn", worker_class="sync", workers=4, threads=1, concurrency="process",
        description="Django (sync views) on gunicorn, 4 sync workers",
    ),
    Target(
        name="rawwsgi-granian",
        app="targets.raw_wsgi:app", framework="none", interface="wsgi",
        server="granian", worker_class="wsgi", workers=1, threads=32, concurrency="threads",
        description="framework-free WSGI app on granian, 1 worker x 32 blocking threads",
    ),
    # ASGI
    Target(
        name="fastapi-uvicorn",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="event-loop",
        description="FastAPI on uvicorn, 1 process with an event loop: waits overlap",
        pool=COOPERATIVE_POOL,
    ),
    Target(
        name="fastapi-uvicorn-httpx",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="event-loop",
        description="factor: fastapi-uvicorn calling its upstream with httpx.AsyncClient "
                    "instead of aiohttp",
        pool=COOPERATIVE_POOL, http_client="httpx",
    ),
    Target(
        name="fastapi-uvicorn-workers",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=MULTI_WORKERS, threads=1,
        concurrency="event-loop",
        description=f"FastAPI on uvicorn, {MULTI_WORKERS} worker processes "
                    "(from the server's CPU budget)",
        pool=COOPERATIVE_POOL,
    ),
    Target(
        name="fastapi-gunicorn-uvicorn",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="gunicorn", worker_class="uvicorn", workers=MULTI_WORKERS, threads=1,
        concurrency="event-loop",
        description=f"FastAPI on gunicorn with {MULTI_WORKERS} uvicorn workers: "
                    "the usual production setup",
        pool=COOPERATIVE_POOL,
    ),
    Target(
        name="fastapi-uvicorn-def",
        app=DEF_APP, framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=ANYIO_THREADS,
        concurrency="threads",
        description="pitfall: plain `def` endpoints run in FastAPI's threadpool "
                    f"({ANYIO_THREADS} threads)",
        pool=ANYIO_THREADS,  # one connection per thread, as for the WSGI thread servers
    ),
    Target(
        name="fastapi-uvicorn-blocking",
        app=BLOCKING_APP, framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="blocked-loop",
        description="pitfall: time.sleep inside `async def` blocks the event loop: "
                    "one request at a time",
        pool=COOPERATIVE_POOL,  # as fastapi-uvicorn: the blocked loop, not the pool, limits
    ),
    Target(
        name="fastapi-granian",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="granian", worker_class="asgi", workers=1, threads=1, concurrency="event-loop",
        description="FastAPI on granian (ASGI), 1 worker",
        pool=COOPERATIVE_POOL,
    ),
    # HTTP/2 and TLS (the protocol profile, PROTOCOL_TARGETS): the same app and worker model,
    # only the server and the way clients reach it differ.
    Target(
        name="fastapi-hypercorn",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="hypercorn", worker_class="asyncio", workers=1, threads=1,
        concurrency="event-loop",
        description="FastAPI on hypercorn, 1 worker, HTTP/1.1 in plain text",
        pool=COOPERATIVE_POOL,
    ),
    Target(
        name="fastapi-hypercorn-tls",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="hypercorn", worker_class="asyncio", workers=1, threads=1,
        concurrency="event-loop",
        description="FastAPI on hypercorn, 1 worker, HTTP/1.1 over TLS",
        pool=COOPERATIVE_POOL, tls=True,
    ),
    Target(
        name="fastapi-hypercorn-h2c",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="hypercorn", worker_class="asyncio", workers=1, threads=1,
        concurrency="event-loop",
        description="FastAPI on hypercorn, 1 worker, HTTP/2 in plain text "
                    "(h2c, prior knowledge)",
        pool=COOPERATIVE_POOL, http="2",
    ),
    Target(
        name="fastapi-hypercorn-h2",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="hypercorn", worker_class="asyncio", workers=1, threads=1,
        concurrency="event-loop",
        description="FastAPI on hypercorn, 1 worker, HTTP/2 over TLS (h2 by ALPN)",
        pool=COOPERATIVE_POOL, http="2", tls=True,
    ),
    Target(
        name="fastapi-granian-h2c",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="granian", worker_class="asgi", workers=1, threads=1, concurrency="event-loop",
        description="FastAPI on granian (ASGI), 1 worker, HTTP/2 only in plain text "
                    "(h2c, prior knowledge)",
        pool=COOPERATIVE_POOL, http="2",
    ),
    Target(
        name="fastapi-granian-h2",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="granian", worker_class="asgi", workers=1, threads=1, concurrency="event-loop",
        description="FastAPI on granian (ASGI), 1 worker, HTTP/2 only over TLS (h2 by ALPN)",
        pool=COOPERATIVE_POOL, http="2", tls=True,
    ),
    Target(
        name="starlette-uvicorn",
        app="targets.starlette_app:app", framework="starlette", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="event-loop",
        description="Starlette without FastAPI on uvicorn, 1 process",
    ),
    Target(
        name="django-uvicorn",
        app="targets.django_app.asgi:application", framework="django", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="event-loop",
        description="Django (async views) on uvicorn, 1 process",
    ),
    Target(
        name="django-daphne",
        app="targets.django_app.asgi:application", framework="django", interface="asgi",
        server="daphne", worker_class="twisted", workers=1, threads=1, concurrency="event-loop",
        description="Django (async views) on Daphne (Twisted), 1 process",
    ),
    Target(
        name="rawasgi-uvicorn",
        app="targets.raw_asgi:app", framework="none", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="event-loop",
        description="framework-free ASGI app on uvicorn, 1 process",
    ),
    Target(
        name="rawasgi-granian",
        app="targets.raw_asgi:app", framework="none", interface="asgi",
        server="granian", worker_class="asgi", workers=1, threads=1, concurrency="event-loop",
        description="framework-free ASGI app on granian, 1 worker",
    ),
)
# fmt: on

TARGETS: dict[str, Target] = {row.name: row for row in _ROWS}
MAIN_TARGETS = ("flask-gunicorn-sync", "flask-gunicorn-gthread", "fastapi-uvicorn")
# The protocol profile's targets: hypercorn in all four ways (HTTP/1.1 and 2, with and without
# TLS: each pair differs in one), granian over HTTP/1.1, h2c and h2, and the usual HTTP/1.1
# servers (served over TLS when a scenario asks for it).
PROTOCOL_TARGETS = (
    "fastapi-hypercorn",
    "fastapi-hypercorn-tls",
    "fastapi-hypercorn-h2c",
    "fastapi-hypercorn-h2",
    "fastapi-granian",
    "fastapi-granian-h2c",
    "fastapi-granian-h2",
    "fastapi-uvicorn",
    "flask-gunicorn-gthread",
)
