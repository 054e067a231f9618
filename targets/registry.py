"""The target table: one row per named target (app, server, settings, capacity).

A target is what gets benchmarked: an app import string served by a server with a
worker model. Each row declares its concurrency capacity (``slots``) so the harness can
compute the Little's-law bound. Adding a target is adding a row to ``TARGETS``; adding a
server is adding a command builder to ``SERVER_COMMANDS``. The runner never changes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Target:
    name: str
    app: str  # import string, "module:attribute"
    server: str  # key of SERVER_COMMANDS
    framework: str
    interface: str  # "wsgi" or "asgi"
    worker_class: str  # server-specific worker model: "sync", "gthread", "asyncio", ...
    workers: int
    threads: int  # threads per worker; 1 for sync workers and event loops
    description: str

    @property
    def slots(self) -> int | None:
        """Requests the server can hold at once; None when unbounded (async event loop)."""
        if self.interface == "asgi" and self.worker_class == "asyncio":
            return None
        return self.workers * self.threads

    def command(self, host: str, port: int) -> list[str]:
        """The server's argv, bound to host:port. Never a shell string."""
        return SERVER_COMMANDS[self.server](self, host, port)

    def with_settings(self, workers: int | None = None, threads: int | None = None) -> Target:
        """A copy with other worker/thread counts (a one-run override)."""
        if threads is not None and threads != 1 and self.worker_class != "gthread":
            raise ValueError(
                f"target {self.name}: {self.worker_class} workers run one thread each; "
                "only gthread workers take a thread count"
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
            "slots": self.slots,
            "description": self.description,
        }


def _gunicorn(target: Target, host: str, port: int) -> list[str]:
    argv = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(target.workers),
        "--worker-class", target.worker_class,
        "--backlog", "4096",
        "--timeout", "120",
        "--graceful-timeout", "3",
        "--log-level", "warning",
    ]  # fmt: skip
    if target.worker_class == "gthread":
        argv += ["--threads", str(target.threads)]
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


SERVER_COMMANDS: dict[str, Callable[[Target, str, int], list[str]]] = {
    "gunicorn": _gunicorn,
    "uvicorn": _uvicorn,
}

FLASK_APP = "targets.flask_app:app"
FASTAPI_APP = "targets.fastapi_app:app"

_ROWS = (
    Target(
        name="flask-gunicorn-sync",
        app=FLASK_APP,
        server="gunicorn",
        framework="flask",
        interface="wsgi",
        worker_class="sync",
        workers=4,
        threads=1,
        description="Flask on gunicorn, 4 sync workers: one request per worker at a time",
    ),
    Target(
        name="flask-gunicorn-gthread",
        app=FLASK_APP,
        server="gunicorn",
        framework="flask",
        interface="wsgi",
        worker_class="gthread",
        workers=4,
        threads=8,
        description="Flask on gunicorn, 4 gthread workers x 8 threads: 32 requests at a time",
    ),
    Target(
        name="fastapi-uvicorn",
        app=FASTAPI_APP,
        server="uvicorn",
        framework="fastapi",
        interface="asgi",
        worker_class="asyncio",
        workers=1,
        threads=1,
        description="FastAPI on uvicorn, 1 process with an event loop: waits overlap",
    ),
)

TARGETS: dict[str, Target] = {row.name: row for row in _ROWS}
