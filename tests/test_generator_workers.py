"""Locust workers as processes: one that outlives its master quits by itself, and one on
"another host" (``python -m harness worker``, here on loopback) joins each sweep's master.

The records they send and how they are added up: tests/test_generators.py.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import PROJECT, run_harness

from harness.loadgen.stages import read_ready
from harness.run.cpus import Pinning
from harness.run.generators import CellSettings, Generator, GeneratorLayout
from harness.schema import Cell


def summary_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
def test_workers_quit_when_their_master_is_killed(tmp_path: Path) -> None:
    """A plan that waits for a go that never comes; SIGKILL the master: both workers go."""
    cell = Cell("io", "fastapi-uvicorn", "closed", 2, None, 1, 1.0, 1.0, 50.0)
    settings = CellSettings(Pinning(None, None, False, ""), generators=GeneratorLayout(local=2))
    scenario = PROJECT / "scenarios" / "io.py"
    generator = Generator(scenario, ("IoUser",), [(cell, tmp_path / "cell")], settings)
    try:
        deadline = time.monotonic() + 60
        while read_ready(tmp_path / "cell") is None:
            assert generator.alive() and time.monotonic() < deadline
            time.sleep(0.1)
        workers = [psutil.Process(w.pid) for w in generator.workers]
        os.kill(generator.pid, signal.SIGKILL)
        # Each quits MASTER_GONE_S after the last heartbeat (about 6 s here).
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, "a worker outlived its master by 15 s"
    finally:
        generator.stop()


@pytest.mark.e2e
def test_a_worker_from_another_host_joins_each_sweep(tmp_path: Path) -> None:
    """--generators-external 1 with `python -m harness worker` (on loopback): the worker gets
    each sweep's scenario from its master, serves both sweeps, then leaves by itself."""
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "harness", "worker", "--master", f"127.0.0.1:{port}",
         "--idle", "3"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        done = run_harness(
            "run", "--scenarios", "health,io", "--targets", "fastapi-uvicorn", "--users", "4",
            "--duration", "1", "--warmup", "0.5", "--no-calibrate", "--no-verify",
            "--generators-external", "1", "--master-bind", f"127.0.0.1:{port}",
            "--out", str(tmp_path / "run"),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        assert "python -m harness worker --master 127.0.0.1:" in done.stdout + done.stderr
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert worker.returncode == 0, output
    assert "sweep 2 done" in output and "no master at" in output
    for row in summary_rows(tmp_path / "run"):
        assert row["status"] == "ok" and row["generators"] == "1" and float(row["rps"]) > 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "**Load generators:** 1 locust worker (1 joined from other hosts)" in report
