"""A watchdog that ends the harness's process groups when the harness dies, however it dies.

Every server and locust runs in a process group of its own (``servers.start_process``). The
parent-death signal set there reaches only a group's leader, and some leaders' children
outlive their leader's death: gunicorn's sync and uvicorn workers (they look at their parent
once a timeout, a minute, or never), uvicorn's ``--workers`` children and multiprocessing's
resource tracker, granian's worker. So the harness starts this watchdog once, in its own
session, and tells it over a pipe which groups it starts (``+PGID``) and has stopped
(``-PGID``). The harness holds the pipe's only write end: end of file means the harness is
gone (a normal exit, a crash or SIGKILL alike, as the kernel closes a dead process's files),
with no polling and no guessing from a pid that may have been reused. Then the watchdog
sends SIGTERM to every group still listed, and SIGKILL to what is left after GRACE_S.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

from harness.run import PROJECT_ROOT

GRACE_S = 2.0  # a group's processes get this long to exit on SIGTERM before SIGKILL
POLL_S = 0.05

# ---- the harness side ---------------------------------------------------------------------

_lock = threading.Lock()  # one watchdog, though background threads stop groups too
_pipe: int | None = None  # the write end; None until the first group is reported
_watchdog: subprocess.Popen[bytes] | None = None  # kept so it is never collected while running


def watch(pgid: int) -> None:
    """Have the watchdog end process group ``pgid`` if this process dies before stopping it."""
    with _lock:
        _send(_write_end(), f"+{pgid}\n")


def forget(pgid: int) -> None:
    """The group ``pgid`` was stopped: the watchdog must not touch a later group of that id.

    Without a watchdog there is nothing to forget (``harness worker`` stops the locust it
    started itself, which it never watched)."""
    with _lock:
        if _pipe is not None:
            _send(_pipe, f"-{pgid}\n")


def _send(pipe: int, line: str) -> None:
    """One write of a few bytes: atomic on a pipe, so lines from threads never mix."""
    with contextlib.suppress(OSError):  # a watchdog killed by hand: nothing to tell
        os.write(pipe, line.encode())


def _write_end() -> int:
    """The pipe to the watchdog, starting the watchdog on first use."""
    global _pipe, _watchdog
    if _pipe is None:
        read_end, write_end = os.pipe()  # not inherited by any child: only this process has it
        try:
            _watchdog = subprocess.Popen(
                [sys.executable, "-m", "harness.run.reaper"],
                stdin=read_end,
                stdout=subprocess.DEVNULL,  # never hold a caller's capture pipe open
                stderr=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                start_new_session=True,  # a Ctrl-C at the terminal is the harness's to handle
            )
        finally:
            os.close(read_end)
        _pipe = write_end
    return _pipe


def _after_fork_in_child() -> None:
    """A forked child (a chart-drawing pool worker) must not hold the pipe open: the watchdog
    would see the harness's death only once that child exits too. A fresh lock, as another
    thread may have held this one at the fork."""
    global _pipe, _watchdog, _lock
    if _pipe is not None:
        os.close(_pipe)
    _pipe, _watchdog, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _at_exit() -> None:
    """A normal exit: close the pipe (the watchdog ends what is still listed, usually nothing)
    and collect the watchdog, rather than leave it to outlive us unreaped."""
    global _pipe
    if _pipe is None or _watchdog is None:
        return
    with contextlib.suppress(OSError):
        os.close(_pipe)
    _pipe = None
    with contextlib.suppress(subprocess.TimeoutExpired):
        _watchdog.wait(timeout=GRACE_S + 1)


atexit.register(_at_exit)


# ---- the watchdog side ---------------------------------------------------------------------


def read_groups(lines: Iterable[bytes]) -> set[int]:
    """The groups still listed when the stream ends (the harness is gone)."""
    groups: set[int] = set()
    for line in lines:
        pgid = int(line[1:])
        if line.startswith(b"+"):
            groups.add(pgid)
        else:
            groups.discard(pgid)
    return groups


def _signal_groups(groups: set[int], signum: int) -> set[int]:
    """Send signum to every group; the ones that still have a process."""
    left = set()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)
            left.add(pgid)
    return left


def end_groups(groups: set[int], grace_s: float = GRACE_S) -> None:
    """SIGTERM every group (a clean shutdown where the server offers one), then SIGKILL.

    A member that exited but is not yet reaped by init still counts, so this often waits
    the whole grace_s; the SIGKILL then finds nothing running."""
    left = _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = _signal_groups(left, 0)
    _signal_groups(left, signal.SIGKILL)


def main() -> None:
    end_groups(read_groups(sys.stdin.buffer))


if __name__ == "__main__":
    main()
