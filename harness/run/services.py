"""The services some scenarios need beside the target: a database, an upstream HTTP service.

A scenario's ``settings["needs"]`` names one (``harness.run.scenarios.SERVICES``). A run
starts each needed service once, before the verify gate (which checks the real-I/O routes
against it), and stops it at the end, however the run ends:

- ``database``: a seeded throwaway PostgreSQL (``harness.run.database``) pinned to the
  server's CPUs: it works for the server and shares that budget;
- ``upstream``: ``targets.upstream_app`` on uvicorn (``harness.run.upstream``), pinned to the
  generator's CPUs: its own budget, away from the server's.

Every target server the run starts gets their addresses in its environment
(``Target.environment``). A service that cannot start is ``unavailable`` with a one-line
reason: the runner skips the cells that need it and runs the others. One that dies is started
again before the next cells that need it (``ensure``); the cell it died under fails, saying so.
The sampler watches each as its own role (``roles``), so the report can tell when the
database, not the app, was the limit. ``to_dict`` is the manifest's ``services``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import schema
from harness.run.database import DatabaseError, RunningDatabase, database
from harness.run.servers import ServerError
from harness.run.upstream import RunningUpstream, upstream
from targets.registry import Target

DATABASE = "database"
UPSTREAM = "upstream"


class Services:
    """The run's database and upstream, started on demand, restarted when they die."""

    def __init__(
        self,
        run_dir: Path,
        server_cpus: Sequence[int] | None,
        generator_cpus: Sequence[int] | None,
        progress: Any,
    ) -> None:
        self.run_dir = run_dir
        self.server_cpus = server_cpus
        self.generator_cpus = generator_cpus
        self.progress = progress
        self.database: RunningDatabase | None = None
        self.upstream: RunningUpstream | None = None
        self.unavailable: dict[str, str] = {}  # service -> why it could not start
        self.starts: dict[str, int] = {}
        self.records: dict[str, dict[str, Any]] = {}  # service -> its latest start's to_dict
        self._stacks: dict[str, contextlib.ExitStack] = {}

    def log_path(self, service: str) -> Path:
        return self.run_dir / schema.RAW_DIR / f"{service}.log"

    def ensure(self, service: str) -> str | None:
        """Have ``service`` running (starting it, or again after it died); None when it runs,
        else the one-line reason it cannot."""
        running = self.database if service == DATABASE else self.upstream
        if running is not None and running.alive():
            return None
        if running is not None:
            self.progress(f"    the {service} died; starting it again (log: {running.log_path})")
            self._close(service)
        stack = contextlib.ExitStack()
        try:
            if service == DATABASE:
                self.database = stack.enter_context(
                    database(self.log_path(service), self.server_cpus)
                )
                what = f"{self.database.version} on port {self.database.port}"
            else:
                self.upstream = stack.enter_context(
                    upstream(self.log_path(service), self.generator_cpus)
                )
                what = self.upstream.url
        except (DatabaseError, ServerError, OSError) as exc:
            stack.close()
            reason = f"the {service} could not start: {exc}"
            self.unavailable[service] = reason
            self.progress(f"    {reason}")
            return reason
        self._stacks[service] = stack
        self.unavailable.pop(service, None)
        self.starts[service] = self.starts.get(service, 0) + 1
        started = self.database if service == DATABASE else self.upstream
        if started is not None:  # kept for to_dict, which the run calls after close()
            self.records[service] = started.to_dict()
        self.progress(f"    {service} ready: {what}")
        return None

    def alive(self, service: str) -> bool:
        running = self.database if service == DATABASE else self.upstream
        return running is not None and running.alive()

    def environment(self, target: Target) -> dict[str, str]:
        """The variables ``target``'s server starts with: the services' addresses and its pool
        (``Target.environment``; empty for a target without the real-I/O routes)."""
        return target.environment(
            database_dsn=self.database.dsn if self.database is not None else None,
            upstream_url=self.upstream.url if self.upstream is not None else None,
        )

    def roles(self, service: str | None) -> dict[str, int]:
        """Sampler roles for the cells of a scenario needing ``service``."""
        running = {DATABASE: self.database, UPSTREAM: self.upstream}.get(service or "")
        return {str(service): running.pid} if running is not None and running.alive() else {}

    def to_dict(self) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        for name, record in self.records.items():
            entries[name] = {**record, "starts": self.starts.get(name, 0)}
        for name, reason in self.unavailable.items():
            entries[name] = {"unavailable": reason}
        return entries

    def _close(self, service: str) -> None:
        stack = self._stacks.pop(service, None)
        if stack is not None:
            stack.close()
        if service == DATABASE:
            self.database = None
        else:
            self.upstream = None

    def close(self) -> None:
        for service in list(self._stacks):
            self._close(service)
