"""The target table: one row per named target (app, server, settings, capacity).

A target is what gets benchmarked: an app import string served by a server with a
worker model. Each row declares how it holds concurrent requests (``concurrency``), from
which its capacity (``slots``) follows for the Little's-law bound. Adding a target is
adding a row to ``TARGETS``; adding a server is adding a command builder to
``SERVER_COMMANDS``. The runner never changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

# How a target holds requests at once, and so what its slots are:
#   process      one request per worker process (gunicorn sync)        slots = workers
#   threads      one request per thread                                 slots = workers x threads
#   event-loop   any number of waiting requests per process (asyncio)   slots = unbounded
#   greenlets    any number per process (gevent, monkey-patched sleep)  slots = unbounded
#   blocked-loop an event loop whose handlers block it: one at a time   slots = workers
CONCURRENCY = ("process", "threads", "event-loop", "greenlets", "blocked-loop")

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

    def __post_init__(self) -> None:
        if self.concurrency not in CONCURRENCY:
            raise ValueError(f"target {self.name}: concurrency {self.concurrency!r} unknown")

    @property
    def slots(self) -> int | None:
        """Requests the server can hold at once; None when unbounded."""
        if self.concurrency in ("event-loop", "greenlets"):
            return None
        if self.concurrency == "threads":
            return self.workers * self.threads
        return self.workers

    @property
    def threads_configurable(self) -> bool:
        return (self.server, self.worker_class) in (("gunicorn", "gthread"), ("granian", "wsgi"))

    def command(self, host: str, port: int) -> list[str]:
        """The server's argv, bound to host:port. Never a shell string."""
        return SERVER_COMMANDS[self.server](self, host, port)

    def with_settings(self, workers: int | None = None, threads: int | None = None) -> Target:
        """A copy with other worker/thread counts (a one-run override)."""
        if threads is not None and threads != self.threads and not self.threads_configurable:
            raise ValueError(
                f"target {self.name}: its thread count is not a server setting; "
                "only gthread workers and granian's WSGI threads take a thread count"
            )
        if (workers is not None and workers < 1) or (threads is not None and threads < 1):
            raise ValueError(f"target {self.name}: workers and threads must be at least 1")
        changed = replace(
            self,
            workers=self.workers if workers is None else workers,
            threads=self.threads if threads is None else threads,
        )
        if changed == self:
            return self
        note = f"overridden for this run: {changed.workers} workers x {changed.threads} threads"
        return replace(changed, description=f"{self.description} ({note})")

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
            "description": self.description,
        }


GUNICORN_WORKER_CLASSES = {
    "sync": "sync",
    "gthread": "gthread",
    "gevent": "gevent",
    "uvicorn": "uvicorn_worker.UvicornWorker",
}


def _gunicorn(target: Target, host: str, port: int) -> list[str]:
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
    return [*argv, target.app]


def _uvicorn(target: Target, host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn",
        "--host", host,
        "--port", str(port),
        "--workers", str(target.workers),
        "--backlog", "4096",
        "--no-access-log",
        "--log-level", "warning",
        target.app,
    ]  # fmt: skip


def _daphne(target: Target, host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "daphne",
        "--bind", host,
        "--port", str(port),
        "--verbosity", "0",
        target.app,
    ]  # fmt: skip


def _granian(target: Target, host: str, port: int) -> list[str]:
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
    return [*argv, target.app]


SERVER_COMMANDS: dict[str, Callable[[Target, str, int], list[str]]] = {
    "gunicorn": _gunicorn,
    "uvicorn": _uvicorn,
    "daphne": _daphne,
    "granian": _granian,
}

FLASK_APP = "targets.flask_app:app"
FASTAPI_APP = "targets.fastapi_app:app"


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
    ),
    Target(
        name="flask-gunicorn-gthread",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="gunicorn", worker_class="gthread", workers=4, threads=8, concurrency="threads",
        description="Flask on gunicorn, 4 gthread workers x 8 threads: 32 requests at a time",
    ),
    Target(
        name="flask-gunicorn-gevent",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="gunicorn", worker_class="gevent", workers=4, threads=1, concurrency="greenlets",
        description="Flask on gunicorn, 4 gevent workers: time.sleep patched to yield",
    ),
    Target(
        name="flask-granian",
        app=FLASK_APP, framework="flask", interface="wsgi",
        server="granian", worker_class="wsgi", workers=1, threads=32, concurrency="threads",
        description="Flask on granian (WSGI), 1 worker x 32 blocking threads",
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
    ),
    Target(
        name="fastapi-uvicorn-workers",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=MULTI_WORKERS, threads=1,
        concurrency="event-loop",
        description=f"FastAPI on uvicorn, {MULTI_WORKERS} worker processes "
                    "(from the server's CPU budget)",
    ),
    Target(
        name="fastapi-gunicorn-uvicorn",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="gunicorn", worker_class="uvicorn", workers=MULTI_WORKERS, threads=1,
        concurrency="event-loop",
        description=f"FastAPI on gunicorn with {MULTI_WORKERS} uvicorn workers: "
                    "the usual production setup",
    ),
    Target(
        name="fastapi-uvicorn-def",
        app="targets.fastapi_pitfalls:sync_def_app", framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=ANYIO_THREADS,
        concurrency="threads",
        description="pitfall: plain `def` endpoints run in FastAPI's threadpool "
                    f"({ANYIO_THREADS} threads)",
    ),
    Target(
        name="fastapi-uvicorn-blocking",
        app="targets.fastapi_pitfalls:blocking_app", framework="fastapi", interface="asgi",
        server="uvicorn", worker_class="asyncio", workers=1, threads=1, concurrency="blocked-loop",
        description="pitfall: time.sleep inside `async def` blocks the event loop: "
                    "one request at a time",
    ),
    Target(
        name="fastapi-granian",
        app=FASTAPI_APP, framework="fastapi", interface="asgi",
        server="granian", worker_class="asgi", workers=1, threads=1, concurrency="event-loop",
        description="FastAPI on granian (ASGI), 1 worker",
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
