"""Pausing a server on purpose (SIGSTOP/SIGCONT), like a GC pause or a VM hiccup.

Used to test the tester: during a stall a closed-loop generator stops sending (its users
are all waiting), so the stall hides from its percentiles; an open-loop generator keeps
sending, and latency measured from the intended start shows the stall.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import schema


@dataclass(frozen=True)
class StallPlan:
    at_s: float  # seconds after the measurement window opens
    for_s: float


class Staller:
    """A thread that waits for the cell's window to open, then pauses the server group."""

    def __init__(self, plan: StallPlan, server_pgid: int, cell_dir: Path) -> None:
        self.plan = plan
        self.server_pgid = server_pgid
        self.cell_dir = cell_dir
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gatebench-stall", daemon=True)

    def __enter__(self) -> Staller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cancel.set()
        self._thread.join(timeout=self.plan.for_s + 5)
        self._resume()  # never leave a server stopped

    def _window_start(self) -> float | None:
        path = self.cell_dir / schema.WINDOW_FILE
        while not self._cancel.is_set():
            if path.exists():
                start: float = json.loads(path.read_text())["window_start"]
                return start
            self._cancel.wait(0.05)
        return None

    def _run(self) -> None:
        start = self._window_start()
        if start is None:
            return
        delay = start + self.plan.at_s - time.time()
        if delay > 0 and self._cancel.wait(delay):
            return
        stopped_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server_pgid, signal.SIGSTOP)
        try:
            self._cancel.wait(self.plan.for_s)
        finally:
            self._resume()
        record = {"at": stopped_at, "for_s": round(time.time() - stopped_at, 4)}
        (self.cell_dir / schema.STALL_FILE).write_text(json.dumps(record))

    def _resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server_pgid, signal.SIGCONT)
