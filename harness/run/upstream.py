"""The upstream HTTP service the real-I/O scenarios call through the target (``/upstream``).

``upstream(log_path, cpus)`` runs ``targets.upstream_app`` on uvicorn on a free port of
127.0.0.1 while the block runs, pinned to ``cpus`` (its own CPU budget: the runner gives it the
generator's CPUs, so the target's server keeps its own; it sleeps far more than it computes),
ready once its ``/health`` answers, stopped on the way out however the block ends (and, like
every child, when the harness is killed outright). Its CPU is sampled as the role
``upstream``, so a cell can show it was never the limit.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.run.servers import free_port, start_process, stop_process, wait_ready

HOST = "127.0.0.1"
APP = "targets.upstream_app:app"


@dataclass
class RunningUpstream:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "app": APP, "log": str(self.log_path)}


@contextlib.contextmanager
def upstream(log_path: Path, cpus: Sequence[int] | None = None) -> Iterator[RunningUpstream]:
    """The upstream service while the block runs (a ServerError if it does not start)."""
    port = free_port(HOST)
    argv = [
        sys.executable, "-m", "uvicorn", APP, "--host", HOST, "--port", str(port),
        "--no-access-log", "--log-level", "warning", "--backlog", "4096",
    ]  # fmt: skip
    proc = start_process(argv, log_path, cpus)
    running = RunningUpstream(proc, f"http://{HOST}:{port}", log_path)
    try:
        wait_ready(running.url, proc, log_path, "upstream")
        yield running
    finally:
        stop_process(proc)
