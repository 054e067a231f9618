"""Samples CPU and memory of the processes in play with psutil, in a thread.

Roles, one row each per sample:

- a **tree** role (``server``, ``generator``): a process and all its descendants. CPU is
  percent of one CPU summed over the tree (a server with four busy workers can read 400);
  RSS and PSS are summed the same way (PSS shares each page among the processes mapping it,
  so forked workers' common pages are not counted once per worker; read for the server only).
  For the server, the sampler can also count the ESTABLISHED TCP connections to its port,
  per process;
- ``harness``: this orchestrator process alone (not its children: those are the roles above);
- ``other``: every other process on the machine: the machine's busy CPU time over the
  interval (all CPUs, from ``psutil.cpu_times``) minus the roles above, in percent of one
  CPU, and the CPU steal over the interval (time the hypervisor gave to other guests).

Samples are written to ``resources.csv`` with their wall-clock time, so analysis can keep
only those inside the measurement window. Its columns (``COLUMNS``):

``t`` epoch seconds; ``role``; ``cpu_pct`` (empty: no reading, e.g. a baseline);
``rss_mb`` (MB, 1e6 bytes; empty for ``other``); ``procs`` (processes in the tree; empty for
``other``); ``pss_mb`` (MB; the server role only, empty where it cannot be read); ``conns``
(server only, when counted: space-separated ESTABLISHED connections to the server's port of
each server process that holds any, in pid order, "0" when none holds any; empty otherwise);
``steal_pct`` (``other`` only).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import psutil

INTERVAL_S = 0.5
COLUMNS = ("t", "role", "cpu_pct", "rss_mb", "procs", "pss_mb", "conns", "steal_pct")
HARNESS = "harness"
OTHER = "other"
SERVER = "server"
NAN = math.nan


class Row(NamedTuple):
    """One line of ``resources.csv``; NaN (numbers) or "" (conns) where there is no value."""

    t: float
    role: str
    cpu_pct: float
    rss_mb: float
    procs: int | None
    pss_mb: float = NAN
    conns: str = ""
    steal_pct: float = NAN


class Memory(NamedTuple):
    rss_mb: float
    pss_mb: float  # NaN when some process's PSS could not be read
    procs: int


def _tree(root_pids: int | Sequence[int], recursive: bool) -> list[psutil.Process]:
    """The roots and (if recursive) all their descendants; [] when every root is gone."""
    found: list[psutil.Process] = []
    for root_pid in [root_pids] if isinstance(root_pids, int) else root_pids:
        try:
            root = psutil.Process(root_pid)
            found += [root, *root.children(recursive=True)] if recursive else [root]
        except psutil.NoSuchProcess:
            continue
    return found


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def tree_memory(processes: list[psutil.Process], pss: bool = True) -> Memory | None:
    """Summed RSS (and PSS) of these processes; None when none of them could be read."""
    rss = 0
    pss_total: float = 0
    read = 0
    for proc in processes:
        try:
            rss += proc.memory_info().rss
        except psutil.Error:
            continue
        read += 1
        if pss and not math.isnan(pss_total):
            try:
                pss_total += proc.memory_full_info().pss
            except (psutil.Error, AttributeError):  # AttributeError: no PSS on this system
                pss_total = NAN
    if not read:
        return None
    return Memory(rss / 1e6, pss_total / 1e6 if pss else NAN, read)


def established_inodes(port: int) -> set[str] | None:
    """Socket inodes of the ESTABLISHED TCP connections whose local port is ``port``, from
    /proc/net/tcp{,6} (one read of each table; None where there is no such table)."""
    suffix = f":{port:04X}"
    found: set[str] = set()
    tables = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as handle:
                next(handle, None)  # the header
                for line in handle:
                    fields = line.split()
                    # sl local_address rem_address st ... inode; st 01 is ESTABLISHED
                    if len(fields) > 9 and fields[3] == "01" and fields[1].endswith(suffix):
                        found.add(fields[9])
            tables += 1
        except OSError:
            continue
    return found if tables else None


def _socket_count(pid: int, inodes: set[str]) -> int:
    folder = f"/proc/{pid}/fd"
    count = 0
    for fd in os.listdir(folder):
        with contextlib.suppress(OSError):
            link = os.readlink(f"{folder}/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                count += 1
    return count


def connection_counts(processes: list[psutil.Process], port: int) -> list[int]:
    """ESTABLISHED TCP connections with local port ``port`` held by each process."""
    inodes = established_inodes(port)
    counts = []
    for proc in processes:
        try:
            if inodes is not None:
                counts.append(_socket_count(proc.pid, inodes))
            else:  # no /proc/net tables: psutil's way, one table read per process
                counts.append(
                    sum(
                        1
                        for conn in proc.net_connections(kind="tcp")
                        if conn.status == psutil.CONN_ESTABLISHED
                        and conn.laddr
                        and conn.laddr.port == port
                    )
                )
        except (psutil.Error, OSError):
            counts.append(0)
    return counts


def format_conns(processes: list[psutil.Process], counts: list[int]) -> str:
    """The ``conns`` field: counts of the processes holding any, in pid order; "0" if none."""
    held = [count for _, count in sorted(zip((p.pid for p in processes), counts, strict=True))]
    held = [count for count in held if count > 0]
    return " ".join(str(count) for count in held) if held else "0"


class TreeProbe:
    """One role's processes, with the CPU time each had at the previous sample."""

    def __init__(
        self,
        root_pid: int | Sequence[int],
        recursive: bool = True,
        pss: bool = True,
        port: int | None = None,
    ) -> None:
        self.root_pid = root_pid
        self.recursive = recursive
        self.pss = pss
        self.port = port  # count connections to this port (server role), None: do not
        self.cpu_s: dict[int, float] = {}  # pid -> user+system seconds at the previous sample
        self.sampled_at: float | None = None  # time.monotonic() of the previous sample

    def processes(self) -> list[psutil.Process]:
        return _tree(self.root_pid, self.recursive)

    def memory(self) -> Memory | None:
        """Memory of the tree now (None if the root is gone)."""
        return tree_memory(self.processes(), self.pss)

    def conns(self, processes: list[psutil.Process] | None = None) -> str:
        if self.port is None:
            return ""
        processes = self.processes() if processes is None else processes
        return format_conns(processes, connection_counts(processes, self.port))

    def sample(self) -> Row | None:
        """This role's row now, with its CPU since the previous call (NaN on the first call);
        None when the root is gone. A process that appeared since the previous call counts
        with all its CPU time (it began after that call)."""
        now = time.monotonic()
        processes = self.processes()
        if not processes:
            self.cpu_s, self.sampled_at = {}, now
            return None
        seconds: dict[int, float] = {}
        for proc in processes:
            try:
                seconds[proc.pid] = _cpu_seconds(proc)
            except psutil.Error:
                continue
        cpu = NAN
        if self.sampled_at is not None and now > self.sampled_at:
            used = sum(s - self.cpu_s.get(pid, 0.0) for pid, s in seconds.items())
            cpu = max(used, 0.0) / (now - self.sampled_at) * 100
        self.cpu_s, self.sampled_at = seconds, now
        memory = tree_memory(processes, self.pss)
        if memory is None:
            return None
        return Row(0.0, "", cpu, memory.rss_mb, memory.procs, memory.pss_mb, self.conns(processes))


class MachineProbe:
    """The whole machine's busy and stolen CPU time between samples (all CPUs summed)."""

    def __init__(self) -> None:
        self.previous: tuple[float, float, float] | None = None  # monotonic, busy s, steal s

    @staticmethod
    def _times() -> tuple[float, float]:
        times = psutil.cpu_times()
        steal = getattr(times, "steal", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        # guest time is already part of user/nice on Linux; steal is no process's time here
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return total - idle - steal, steal

    def sample(self) -> tuple[float, float] | None:
        """(busy %, steal %) of one CPU since the previous call; None on the first call."""
        now = time.monotonic()
        busy, steal = self._times()
        previous, self.previous = self.previous, (now, busy, steal)
        if previous is None or now <= previous[0]:
            return None
        elapsed = now - previous[0]
        return (
            max(busy - previous[1], 0.0) / elapsed * 100,
            max(steal - previous[2], 0.0) / elapsed * 100,
        )


class Sampler:
    """Background thread sampling each role: rows of ``COLUMNS``.

    One sampler watches a server and its load generator across a sweep of cells. ``mark``
    records each tree's memory right now (the baseline before a cell's load: no CPU reading),
    and ``take`` hands over the rows since the previous ``take``: one cell's samples.

    ``roles`` maps a tree role to its root pid (or pids: a locust master and its workers).
    With ``count_connections`` the ``server`` role's rows also count the ESTABLISHED
    connections to ``port``. ``harness`` and ``other`` rows are added unless turned off.
    """

    def __init__(
        self,
        roles: Mapping[str, int | Sequence[int]],
        interval_s: float = INTERVAL_S,
        count_connections: bool = False,
        port: int | None = None,
        harness: bool = True,
        other: bool = True,
    ) -> None:
        if count_connections and port is None:
            raise ValueError("count_connections needs the server's port")
        self.probes = {
            role: TreeProbe(
                pid,
                pss=role == SERVER,  # reading PSS costs ~1 ms a process: the server's only
                port=port if count_connections and role == SERVER else None,
            )
            for role, pid in roles.items()
        }
        if harness:
            self.probes[HARNESS] = TreeProbe(os.getpid(), recursive=False, pss=False)
        self.machine = MachineProbe() if other else None
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="gatebench-sampler", daemon=True)
        self.rows: list[Row] = []

    def __enter__(self) -> Sampler:
        self._sample(keep=False)  # CPU baselines: a first reading says nothing about CPU
        self.mark()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def mark(self) -> None:
        """Each tree's memory now (RSS, PSS, connections), with no CPU reading: what a cell's
        load starts from."""
        now = time.time()
        rows = []
        for role, probe in self.probes.items():
            processes = probe.processes()
            memory = tree_memory(processes, probe.pss)
            if memory is not None:
                conns = probe.conns(processes)
                rows.append(Row(now, role, NAN, memory.rss_mb, memory.procs, memory.pss_mb, conns))
        with self._lock:
            self.rows += rows

    def take(self) -> list[Row]:
        """The rows since the previous take (or the start)."""
        with self._lock:
            rows, self.rows = self.rows, []
        return rows

    def _sample(self, keep: bool = True) -> None:
        now = time.time()
        machine = self.machine.sample() if self.machine is not None else None
        rows = []
        for role, probe in self.probes.items():
            row = probe.sample()
            if row is not None:
                rows.append(row._replace(t=now, role=role))
        if machine is not None:
            busy, steal = machine
            known = [row.cpu_pct for row in rows]
            # A role without a CPU reading (a tree just replaced) would land in "other".
            if len(rows) == len(self.probes) and not any(math.isnan(c) for c in known):
                other = max(busy - sum(known), 0.0)
                rows.append(Row(now, OTHER, other, NAN, None, NAN, "", steal))
        if keep:
            with self._lock:
                self.rows += rows

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()


# Memory to the kB: per-connection memory divides a growth of a few hundred kB by a few
# connections, which 0.1 MB steps would round away.
MEMORY_DIGITS = 3


def _number(value: float, digits: int = 1) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def write_rows(path: Path, rows: list[Row]) -> Path:
    """A cell's ``resources.csv``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    f"{row.t:.3f}",
                    row.role,
                    _number(row.cpu_pct),
                    _number(row.rss_mb, MEMORY_DIGITS),
                    "" if row.procs is None else row.procs,
                    _number(row.pss_mb, MEMORY_DIGITS),
                    row.conns,
                    _number(row.steal_pct),
                ]
            )
    return path


def mean_cpu(rows: list[Row], role: str, window: tuple[float, float]) -> float | None:
    """Mean CPU % of one role over the samples inside ``window`` (epoch seconds)."""
    inside = [
        row.cpu_pct
        for row in rows
        if row.role == role and window[0] <= row.t <= window[1] and not math.isnan(row.cpu_pct)
    ]
    return round(sum(inside) / len(inside), 1) if inside else None


def _float(text: str | None) -> float:
    return float(text) if text else NAN


def read_rows(path: Path) -> list[Row]:
    """The rows of a ``resources.csv`` this module wrote, old five-column files included
    ([] when there is none or it cannot be read)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [
                Row(
                    float(r["t"]),
                    r["role"],
                    _float(r["cpu_pct"]),
                    _float(r["rss_mb"]),
                    int(r["procs"]) if r.get("procs") else None,
                    _float(r.get("pss_mb")),
                    r.get("conns") or "",
                    _float(r.get("steal_pct")),
                )
                for r in csv.DictReader(handle)
            ]
    except (OSError, ValueError, KeyError, TypeError):
        return []
