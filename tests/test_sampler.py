"""harness.run.sampler: resources.csv rows from real processes (CPU, RSS, PSS, connections,
the harness itself, everything else and steal), and reading old and new files back."""

from __future__ import annotations

import contextlib
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.run.sampler import (
    COLUMNS,
    Row,
    Sampler,
    TreeProbe,
    format_conns,
    mean_cpu,
    read_rows,
    write_rows,
)

INTERVAL_S = 0.2
IDLE = "import time; time.sleep(60)"
BUSY = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"
# The parent forks a child after loading a few MB of data: both map the same pages.
FORKED = (
    "import os, time\n"
    "data = bytearray(20_000_000)\n"
    "for i in range(0, len(data), 4096): data[i] = 1\n"
    "os.fork()\n"
    "time.sleep(60)\n"
)
# Listens on a port given back on stdout, accepts and holds every connection; forks once
# after listening so that two processes share the listening socket, like a server's workers.
HOLDER = (
    "import os, socket, sys, time\n"
    "listener = socket.socket()\n"
    "listener.bind(('127.0.0.1', 0))\n"
    "listener.listen(64)\n"
    "print(listener.getsockname()[1], flush=True)\n"
    "os.fork()\n"
    "held = []\n"
    "while True:\n"
    "    held.append(listener.accept()[0])\n"
)


@contextlib.contextmanager
def python(code: str) -> Iterator[subprocess.Popen[str]]:
    """A Python subprocess (and whatever it forks), ended afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rows_of(rows: list[Row], role: str) -> list[Row]:
    return [row for row in rows if row.role == role]


def sampled(roles: dict[str, int], seconds: float, **options: object) -> list[Row]:
    with Sampler(roles, interval_s=INTERVAL_S, **options) as sampler:  # type: ignore[arg-type]
        time.sleep(seconds)
    return sampler.take()


def test_a_role_and_everything_else_get_their_own_cpu() -> None:
    with python(IDLE) as idle, python(BUSY) as busy, python(BUSY) as foreign:
        time.sleep(0.3)  # the interpreters have started
        before = {pid: cpu_seconds(pid) for pid in (busy.pid, foreign.pid)}
        started = time.monotonic()
        rows = sampled({"server": busy.pid, "generator": idle.pid}, 2.0)
        elapsed = time.monotonic() - started
        used = {pid: (cpu_seconds(pid) - s) / elapsed * 100 for pid, s in before.items()}
    server, generator, other = (rows_of(rows, r) for r in ("server", "generator", "other"))
    assert all(row.pss_mb > 0 for row in server)
    assert all(math.isnan(row.pss_mb) for row in generator)
    window = (rows[0].t, rows[-1].t)
    # The busy role reads what the process really used (psutil's own account), the idle one ~0.
    server_cpu = mean_cpu(rows, "server", window)
    assert server_cpu is not None and abs(server_cpu - used[busy.pid]) < 20, (server_cpu, used)
    generator_cpu = mean_cpu(rows, "generator", window)
    assert generator_cpu is not None and generator_cpu < 5
    # The foreign busy process is in "other" (other load on the machine can only add to it),
    # and the busy role is not: at most what the machine had beyond the roles.
    other_cpu = mean_cpu(rows, "other", window)
    assert other_cpu is not None and other_cpu > used[foreign.pid] - 20, (other_cpu, used)
    assert len(other) >= 5 and len(server) >= 5 and len(generator) >= 5
    # Only "other" rows carry steal (0 where the kernel reports none); they have no memory.
    assert all(row.steal_pct >= 0 for row in other)
    assert all(math.isnan(row.rss_mb) and row.procs is None for row in other)
    assert all(math.isnan(row.steal_pct) for row in [*server, *generator])
    # the first row of each tree is the baseline taken on entering: memory, no CPU reading
    assert math.isnan(server[0].cpu_pct) and server[0].rss_mb > 0


@pytest.mark.solo  # reads a spinning thread's CPU: two busy test workers starve it below 30%
def test_the_harness_role_is_this_process_alone() -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    with python(BUSY) as child:  # a busy child of this process: not the harness's CPU
        thread = threading.Thread(target=spin)
        thread.start()
        try:
            rows = sampled({"server": child.pid}, 1.5)
        finally:
            stop.set()
            thread.join()
    harness = rows_of(rows, "harness")
    assert harness and all(row.procs == 1 for row in harness)
    assert all(row.rss_mb > 0 and math.isnan(row.pss_mb) for row in harness)  # server only
    readings = [row.cpu_pct for row in harness if not math.isnan(row.cpu_pct)]
    # one spinning thread (the GIL shares it with the sampler's): about a CPU, not two
    assert 30 < sum(readings) / len(readings) < 150, readings


def test_a_tree_counts_its_children_and_pss_counts_shared_pages_once() -> None:
    with python(FORKED) as forked:
        time.sleep(1.0)  # the parent has touched its pages and forked
        rows = sampled({"server": forked.pid}, 0.5, harness=False, other=False)
    server = rows_of(rows, "server")
    assert {row.role for row in rows} == {"server"}
    assert all(row.procs == 2 for row in server)
    last = server[-1]
    # 20 MB touched before the fork: both processes' RSS holds them, PSS splits them
    assert last.rss_mb > 40
    assert 0 < last.pss_mb < last.rss_mb - 15, last


def test_connections_to_the_server_port_are_counted_per_process() -> None:
    with python(HOLDER) as holder:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        time.sleep(0.3)  # forked: both processes accept
        probe = TreeProbe(holder.pid, port=port)
        assert probe.conns() == "0"  # counted, and none held
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(7)]
        try:
            deadline = time.monotonic() + 5
            while sum(map(int, probe.conns().split())) < 7 and time.monotonic() < deadline:
                time.sleep(0.05)
            counts = [int(n) for n in probe.conns().split()]
            assert sum(counts) == 7 and 1 <= len(counts) <= 2, counts
            rows = sampled(
                {"server": holder.pid, "generator": holder.pid}, 0.5, count_connections=True,
                port=port,
            )  # fmt: skip
        finally:
            for client in clients:
                client.close()
    server = rows_of(rows, "server")
    assert server and all(sum(map(int, row.conns.split())) == 7 for row in server)
    assert all(row.conns == "" for row in rows if row.role != "server")  # server role only
    # without the flag nothing is counted
    assert TreeProbe(holder.pid).conns() == ""


def test_connection_counts_are_in_pid_order_and_leave_out_idle_processes() -> None:
    procs = [psutil.Process(), *psutil.Process().children()]

    class Fake:
        def __init__(self, pid: int) -> None:
            self.pid = pid

    fakes = [Fake(30), Fake(10), Fake(20)]
    assert format_conns(fakes, [5, 0, 3]) == "3 5"  # type: ignore[arg-type]
    assert format_conns(fakes, [0, 0, 0]) == "0"  # type: ignore[arg-type]
    assert format_conns(procs[:1], [2]) == "2"


def test_count_connections_needs_a_port() -> None:
    with pytest.raises(ValueError, match="port"):
        Sampler({"server": 1}, count_connections=True)


def test_written_rows_read_back(tmp_path: Path) -> None:
    rows = [
        Row(100.0, "server", math.nan, 51.25, 5, 30.5, "3 17 2 28"),
        Row(100.5, "server", 150.0, 52.0, 5, 31.0, "4 16 2 28"),
        Row(100.5, "generator", 80.0, 90.0, 1, 70.0),
        Row(100.5, "harness", 3.0, 60.0, 1, 55.0),
        Row(100.5, "other", 12.5, math.nan, None, math.nan, "", 0.5),
    ]
    path = write_rows(tmp_path / "resources.csv", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) == "t,role,cpu_pct,rss_mb,procs,pss_mb,conns,steal_pct"
    assert lines[1] == "100.000,server,,51.250,5,30.500,3 17 2 28,"  # memory to the kB
    assert lines[5] == "100.500,other,12.5,,,,,0.5"
    back = read_rows(path)
    assert [(r.role, r.procs, r.conns) for r in back] == [(r.role, r.procs, r.conns) for r in rows]
    assert back[1].cpu_pct == 150.0 and back[1].pss_mb == 31.0
    assert math.isnan(back[0].cpu_pct) and math.isnan(back[4].rss_mb)
    assert back[4].steal_pct == 0.5 and math.isnan(back[0].steal_pct)
    assert mean_cpu(back, "server", (100.0, 101.0)) == 150.0
    assert mean_cpu(back, "other", (100.0, 101.0)) == 12.5
    assert mean_cpu(back, "server", (200.0, 201.0)) is None


def test_an_old_five_column_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "resources.csv"
    path.write_text(
        "t,role,cpu_pct,rss_mb,procs\n"
        "100.000,server,,40.0,5\n"
        "100.500,server,120.0,41.5,5\n"
        "100.500,generator,60.0,80.0,1\n"
    )
    rows = read_rows(path)
    assert [(r.role, r.rss_mb, r.procs) for r in rows] == [
        ("server", 40.0, 5), ("server", 41.5, 5), ("generator", 80.0, 1)
    ]  # fmt: skip
    assert all(math.isnan(r.pss_mb) and r.conns == "" and math.isnan(r.steal_pct) for r in rows)
    assert mean_cpu(rows, "server", (100.0, 101.0)) == 120.0
    assert read_rows(tmp_path / "missing.csv") == []
