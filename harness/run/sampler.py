"""Samples CPU and memory of process trees (server, generator) with psutil, in a thread.

CPU is percent of one CPU summed over a process and all its descendants (so a server
with four busy workers can read 400); RSS is summed the same way. Samples are written
to ``resources.csv`` with their wall-clock time, so analysis can keep only those inside
the measurement window.
"""

from __future__ import annotations

import contextlib
import csv
import math
import threading
import time
from pathlib import Path

import psutil

INTERVAL_S = 0.5


class TreeProbe:
    """Keeps psutil.Process objects between samples (cpu_percent needs the previous call)."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.known: dict[int, psutil.Process] = {}

    def rss_mb(self) -> float | None:
        """Resident memory of the tree now, in MB; None if the root is gone."""
        total = 0
        for proc in self.known.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total / 1e6 if self.known else None

    def sample(self) -> tuple[float, float, int] | None:
        """(cpu_pct, rss_mb, processes) since the previous call, or None if the root is gone."""
        try:
            root = psutil.Process(self.root_pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        cpu = 0.0
        rss = 0
        alive: dict[int, psutil.Process] = {}
        for proc in tree:
            known = self.known.get(proc.pid, proc)
            try:
                with known.oneshot():
                    # The first call for a process sets its baseline and reads 0.0.
                    percent = known.cpu_percent(None)
                    if proc.pid in self.known:
                        cpu += percent
                    rss += known.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            alive[proc.pid] = known
        new_processes = set(alive) - set(self.known)
        self.known = alive
        if new_processes == set(alive):
            # Every process is new: no baseline yet, this sample says nothing about CPU.
            return None
        return cpu, rss / 1e6, len(alive)


Row = tuple[float, str, float, float, int]  # t, role, cpu_pct (nan: no reading), rss_mb, procs


class Sampler:
    """Background thread sampling each role's tree: t,role,cpu_pct,rss_mb,procs rows.

    One sampler watches a server and its load generator across a sweep of cells. ``mark``
    records each tree's memory right now (the baseline before a cell's load: no CPU reading),
    and ``take`` hands over the rows since the previous ``take``: one cell's samples.
    """

    def __init__(self, roles: dict[str, int], interval_s: float = INTERVAL_S):
        self.probes = {role: TreeProbe(pid) for role, pid in roles.items()}
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="gatebench-sampler", daemon=True)
        self.rows: list[Row] = []

    def __enter__(self) -> Sampler:
        for probe in self.probes.values():
            probe.sample()  # CPU baseline: the first reading of a process says nothing
        self.mark()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def mark(self) -> None:
        """Each tree's memory now, with no CPU reading: what a cell's load starts from."""
        now = time.time()
        with self._lock:
            for role, probe in self.probes.items():
                rss = probe.rss_mb()
                if rss is not None:
                    self.rows.append((now, role, math.nan, rss, len(probe.known)))

    def take(self) -> list[Row]:
        """The rows since the previous take (or the start)."""
        with self._lock:
            rows, self.rows = self.rows, []
        return rows

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = time.time()
            for role, probe in self.probes.items():
                sample = probe.sample()
                if sample is not None:
                    with self._lock:
                        self.rows.append((now, role, *sample))


def write_rows(path: Path, rows: list[Row]) -> Path:
    """A cell's ``resources.csv``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "role", "cpu_pct", "rss_mb", "procs"])
        for t, role, cpu, rss, procs in rows:
            cpu_text = "" if math.isnan(cpu) else f"{cpu:.1f}"
            writer.writerow([f"{t:.3f}", role, cpu_text, f"{rss:.1f}", procs])
    return path


def mean_cpu(rows: list[Row], role: str, window: tuple[float, float]) -> float | None:
    """Mean CPU % of one role over the samples inside ``window`` (epoch seconds)."""
    inside = [cpu for t, r, cpu, _, _ in rows if r == role and window[0] <= t <= window[1]]
    inside = [cpu for cpu in inside if not math.isnan(cpu)]
    return round(sum(inside) / len(inside), 1) if inside else None


def read_rows(path: Path) -> list[Row]:
    """The rows of a ``resources.csv`` this module wrote ([] when there is none)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [
                (float(r["t"]), r["role"], float(r["cpu_pct"] or "nan"), float(r["rss_mb"]),
                 int(r["procs"]))
                for r in csv.DictReader(handle)
            ]  # fmt: skip
    except (OSError, ValueError, KeyError):
        return []
