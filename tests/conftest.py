"""Suite-wide guard: no target server or locust process started by the tests outlives them.

Every process the suite starts inherits ``GATEBENCH_TEST_SESSION`` (set below, at import,
before any test runs). At the end of the session, any process still alive that runs a
target app or the locust extension, was created after the session started and carries this
session's mark is a leak: it is killed and the session fails with the list. The mark keeps
the guard from touching processes of anything else running on the machine (another test
session, a benchmark), even ones with the same command line.

Real runs that several tests only read are made here once per session, and only when a
test asks for one (session-scoped fixtures are lazy): see ``smoke_run``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

# Command-line fragments of the processes a run starts: the target servers (gunicorn masters
# and workers, uvicorn) and locust with the harness extension.
MARKERS = (
    "targets.",  # every target's import string: targets.flask_app:app, targets.raw_asgi:app, ...
    "harness/loadgen/extension.py",
    "locust_ext.py",
)
SESSION_ENV = "GATEBENCH_TEST_SESSION"
SESSION_ID = uuid.uuid4().hex
os.environ[SESSION_ENV] = SESSION_ID
GRACE_S = 5.0  # a process being stopped as the last test ends gets this long to go
CLOCK_SLACK_S = 1.0  # psutil's create_time is derived from boot time and clock ticks


def _started_by_this_session(proc: psutil.Process) -> bool:
    try:
        return proc.environ().get(SESSION_ENV) == SESSION_ID
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def leftover_processes(since: float) -> list[psutil.Process]:
    """Live processes of this session that run a target app or the locust extension."""
    found = []
    for proc in psutil.process_iter(["cmdline", "create_time", "status"]):
        info = proc.info
        if info["status"] == psutil.STATUS_ZOMBIE or info["create_time"] is None:
            continue
        cmdline = " ".join(info["cmdline"] or ())
        if not any(marker in cmdline for marker in MARKERS):
            continue
        if info["create_time"] < since - CLOCK_SLACK_S or proc.pid == os.getpid():
            continue
        if _started_by_this_session(proc):
            found.append(proc)
    return found


def describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:200]}"
    except psutil.Error:
        return f"pid {proc.pid}: (gone)"


@pytest.fixture(scope="session", autouse=True)
def no_orphan_processes() -> Iterator[None]:
    """After the last test: fail the session if a server or locust process is still alive."""
    started = time.time()
    yield
    leftovers = leftover_processes(started)
    if not leftovers:
        return
    _, alive = psutil.wait_procs(leftovers, timeout=GRACE_S)
    if not alive:
        return
    listing = [describe(p) for p in alive]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=GRACE_S)
    pytest.fail(
        "processes started by the test session were still alive at its end (now killed):\n  "
        + "\n  ".join(listing),
        pytrace=False,
    )


# ---- real runs shared by the tests that only read them -------------------------------------

PROJECT = Path(__file__).resolve().parent.parent


def run_harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` from the project folder, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class SharedRun:
    """A run folder made once for several tests, and how the command that made it ended."""

    run_dir: Path
    done: subprocess.CompletedProcess[str]


def folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    """``python -m harness run --profile smoke`` (what ``make bench PROFILE=smoke`` runs).

    Made the first time a test asks for it, then shared: test_e2e checks the folder, the
    notebook runs on it, the HTML report opens in a browser. Those tests only read it, and
    the session fails if any of them changed a file in it.
    """
    run_dir = tmp_path_factory.mktemp("smoke-run") / "run"
    done = run_harness("run", "--profile", "smoke", "--out", str(run_dir))
    before = folder_state(run_dir) if run_dir.is_dir() else {}
    yield SharedRun(run_dir, done)
    after = folder_state(run_dir) if run_dir.is_dir() else {}
    assert after == before, "a test wrote into the shared smoke run, which is read-only"


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """cli.main installs SIGINT/SIGTERM handlers when run in-process: put pytest's back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
