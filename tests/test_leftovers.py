"""Nothing outlives the harness, even one killed with SIGKILL (no handler of it runs then).

Every child gets SIGTERM from the kernel as the harness dies (the parent-death signal set
in ``servers.pinned``), and the watchdog (``harness.run.reaper``) ends each process group
whole: the workers that survive their master's death, and children that ignore SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_faults import SERVER_APPS, alive, background, cmdline, descendants, kill_all, wait_for

from harness.run import PROJECT_ROOT, reaper

GONE_S = 10.0  # the acceptance bound: every process of a killed harness is gone this soon
PARENT_GONE_S = 3.0  # a lone child: the parent-death signal, or the watchdog's GRACE_S


def gone_within(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until none of procs runs (a zombie counts as gone) or timeout; those still alive."""
    deadline = time.monotonic() + timeout
    while (left := alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def mentioning(text: str) -> list[psutil.Process]:
    """Live processes whose command line holds text (locust's names the run folder)."""
    return alive([p for p in psutil.process_iter() if text in cmdline(p)])


def tree_of(root: psutil.Process, size: int) -> list[psutil.Process]:
    """root and its descendants once they are size processes, else []."""
    tree = [root, *root.children(recursive=True)]
    return tree if len(tree) >= size else []


# ---- a process started with start_process dies with its parent --------------------------------

PARENT = """\
import sys, time
from pathlib import Path
from harness.run.servers import start_process

proc = start_process({argv!r}, Path(sys.argv[1]), None)
print(proc.pid, flush=True)
time.sleep(60)
"""
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# Ignores SIGTERM (so does the grandchild: an ignored signal stays ignored across exec), as a
# hung server would: only the watchdog's SIGKILL to the whole group ends them.
STUBBORN = [
    sys.executable, "-c",
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)",
]  # fmt: skip


def children_of_a_killed_parent(
    argv: list[str], processes: int, tmp_path: Path
) -> list[psutil.Process]:
    """Start argv with start_process from a python parent, wait until argv's process tree
    holds ``processes``, SIGKILL the parent: what of that tree is alive PARENT_GONE_S later."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(argv=argv), str(tmp_path / "child.log")],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    tree: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        tree = wait_for(lambda: tree_of(child, processes), f"{processes} processes started")
        parent.kill()
        parent.wait(timeout=10)
        return gone_within(tree, PARENT_GONE_S)
    finally:
        kill_all(alive(tree))
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_child_dies_with_its_parent_killed_outright(tmp_path: Path) -> None:
    left = children_of_a_killed_parent(SLEEPER, 1, tmp_path)
    assert not left, [cmdline(p) for p in left]


def test_the_watchdog_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    left = children_of_a_killed_parent(STUBBORN, 2, tmp_path)
    assert not left, [cmdline(p) for p in left]


def test_the_watchdog_ends_only_the_groups_not_yet_stopped() -> None:
    lines = [b"+10\n", b"+11\n", b"+12\n", b"-11\n", b"+11\n", b"-12\n"]
    assert reaper.read_groups(lines) == {10, 11}


# ---- a real run killed with SIGKILL -----------------------------------------------------------


@pytest.mark.e2e  # not solo: it asserts no timing finer than "gone within 10 s"
@pytest.mark.parametrize(
    ("targets", "generators", "locusts"),
    [
        # A gunicorn master and its sync workers; one locust process.
        ("flask-gunicorn-sync,fastapi-uvicorn", "1", 1),
        # uvicorn's supervisor, its workers and a resource tracker; a locust master and two
        # workers.
        ("fastapi-uvicorn-workers", "2", 3),
    ],
)
def test_a_harness_killed_with_sigkill_leaves_no_process(
    tmp_path: Path, targets: str, generators: str, locusts: int
) -> None:
    run_dir = tmp_path / "run"
    args = ["run", "--scenarios", "io", "--targets", targets, "--users", "10",
            "--duration", "20", "--warmup", "1", "--no-calibrate", "--no-verify",
            "--generators", generators, "--out", str(run_dir)]  # fmt: skip
    children: list[psutil.Process] = []
    try:
        with background(args, tmp_path / "logs") as proc:
            # The first cell runs: its server is up and locust has spawned its users.
            wait_for(lambda: list(run_dir.glob("raw/*/window.json")), "the first cell", 60, proc)
            children = descendants(proc.pid)
            proc.kill()
            assert proc.wait(timeout=10) == -signal.SIGKILL
        lines = [cmdline(p) for p in children]
        assert any(app in line for line in lines for app in SERVER_APPS), lines
        assert sum("-m locust" in line for line in lines) == locusts, lines
        left = gone_within(children, GONE_S)
        assert not left, f"alive {GONE_S:.0f} s after SIGKILL: {[cmdline(p) for p in left]}"
        assert not mentioning(str(run_dir))
    finally:
        kill_all(alive(children))
