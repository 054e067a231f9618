"""The services some scenarios need: a real throwaway PostgreSQL and the upstream HTTP service.

``harness.run.database`` and ``harness.run.upstream`` on their own (seeded rows, an
unprivileged postmaster, nothing left behind however the block ends), then whole runs
(``harness.cli.main`` in process) where the database cannot start, where it is killed in the
middle of a cell, and where all goes well. Nothing here mocks PostgreSQL: where it must be
missing, only the harness's lookup of its binaries is made to find nothing; elsewhere
``Services`` is given a spy that records each cluster it starts, and passes through.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from harness.cli import main
from harness.run import database as database_module
from harness.run import services as services_module
from harness.run.database import SEED_ROWS, DatabaseError, RunningDatabase, database
from harness.run.upstream import upstream

GONE_S = 10.0  # every process of a stopped cluster is gone this soon


# ---- helpers ---------------------------------------------------------------------------------


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def processes_of(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line names this cluster's data folder (its postmaster)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if str(data_dir) in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def family(pid: int) -> list[psutil.Process]:
    """The postmaster and every process it forked (backends, checkpointer, ...)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def still_running(procs: Sequence[psutil.Process]) -> list[str]:
    """The ones still alive (same pid *and* start time: not a recycled pid), described."""
    _, alive = psutil.wait_procs(list(procs), timeout=GONE_S)
    left = []
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"pid {proc.pid} ({proc.username()}): {cmdline(proc)}")
    return left


def assert_cluster_gone(db: RunningDatabase, procs: Sequence[psutil.Process]) -> None:
    assert not db.data_dir.exists(), f"{db.data_dir} was left behind"
    assert not still_running(procs), still_running(procs)
    assert not processes_of(db.data_dir), [cmdline(p) for p in processes_of(db.data_dir)]


def hide_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the harness's lookup of initdb/postgres find nothing (PostgreSQL "not installed");
    every other glob and which still works."""
    real_glob, real_which = glob.glob, shutil.which

    def no_pg_glob(pattern: str, *args: Any, **kwargs: Any) -> list[str]:
        return [] if "postgresql" in str(pattern) else real_glob(pattern, *args, **kwargs)

    def no_pg_which(cmd: str, *args: Any, **kwargs: Any) -> str | None:
        return (
            None if Path(cmd).name in ("initdb", "postgres") else real_which(cmd, *args, **kwargs)
        )

    monkeypatch.setattr(database_module.glob, "glob", no_pg_glob)
    monkeypatch.setattr(database_module.shutil, "which", no_pg_which)


def spy_on_databases(monkeypatch: pytest.MonkeyPatch) -> list[RunningDatabase]:
    """Every cluster ``Services`` starts, in order (the real ``database``, passed through)."""
    started: list[RunningDatabase] = []

    @contextlib.contextmanager
    def recording(log_path: Path, cpus: Sequence[int] | None = None) -> Iterator[RunningDatabase]:
        with database(log_path, cpus) as db:
            started.append(db)
            yield db

    monkeypatch.setattr(services_module, "database", recording)
    return started


@contextlib.contextmanager
def watching(started: list[RunningDatabase]) -> Iterator[dict[tuple[int, float], psutil.Process]]:
    """Every process of every cluster in ``started`` (postmaster, helpers, the backends of the
    server's pool) seen while the block runs, to check afterwards that all are gone."""
    seen: dict[tuple[int, float], psutil.Process] = {}
    done = threading.Event()

    def look() -> None:
        while not done.wait(0.1):
            for db in list(started):
                for proc in family(db.pid):
                    with contextlib.suppress(psutil.Error):
                        seen.setdefault((proc.pid, proc.create_time()), proc)

    thread = threading.Thread(target=look, name="watch-postgres")
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


def read_manifest(run_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return manifest


def summary_rps(run_dir: Path, cell_id: str) -> float:
    with open(run_dir / "summary.csv", newline="") as handle:
        rows = {row["cell_id"]: row for row in csv.DictReader(handle)}
    return float(rows[cell_id]["rps"])


def get(url: str) -> tuple[int, bytes, float]:
    """Status, body and seconds taken of one GET."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, body, time.perf_counter() - started


# ---- 1. the database context -------------------------------------------------------------------


@pytest.mark.e2e
def test_database_is_seeded_unprivileged_and_leaves_nothing(tmp_path: Path) -> None:
    with database(tmp_path / "database.log") as db:
        procs = family(db.pid)
        assert db.alive() and db.data_dir.is_dir()
        owner = psutil.Process(db.pid).username()
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as postgres (or nobody)
            assert owner != "root", owner
        with psycopg.connect(db.dsn) as conn:
            (count,) = conn.execute("SELECT count(*) FROM items").fetchone() or (0,)
            row = conn.execute("SELECT name, value FROM items WHERE id = 5").fetchone()
        assert count == SEED_ROWS == 10_000
        assert row == ("item-5", 5 * 7919 % 10007)
        record = db.to_dict()
        assert record["rows"] == SEED_ROWS and record["port"] == db.port
        assert record["settings"]["fsync"] == "off"
        assert record["version"].startswith("postgres (PostgreSQL)")
    assert not db.alive()
    assert_cluster_gone(db, procs)


@pytest.mark.e2e
def test_database_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    seen: list[RunningDatabase] = []
    procs: list[psutil.Process] = []
    with pytest.raises(ZeroDivisionError), database(tmp_path / "database.log") as db:
        seen.append(db)
        procs = family(db.pid)
        with psycopg.connect(db.dsn) as conn:  # a session open as the block fails
            conn.execute("SELECT 1")
            _ = 1 / 0
    (db,) = seen
    assert len(procs) > 1, procs  # the postmaster and its helpers were watched
    assert_cluster_gone(db, procs)


# ---- 2. no PostgreSQL installed --------------------------------------------------------------


def test_no_postgresql_installed_is_one_line_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_postgresql(monkeypatch)
    with pytest.raises(DatabaseError) as caught, database(tmp_path / "database.log"):
        pytest.fail("the block ran without PostgreSQL")
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message, message
    assert "install PostgreSQL" in message and "apt-get install postgresql" in message, message


# ---- 3. a run where the database cannot start ------------------------------------------------


@pytest.mark.e2e
def test_a_run_without_postgresql_skips_the_db_cells_and_runs_the_others(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
) -> None:
    hide_postgresql(monkeypatch)
    run_dir = tmp_path / "run"
    status = main(
        ["run", "--scenarios", "db,io", "--targets", "fastapi-uvicorn", "--users", "2,3",
         "--duration", "1", "--warmup", "0", "--no-verify", "--no-calibrate",
         "--out", str(run_dir)]
    )  # fmt: skip
    progress = capsys.readouterr().err
    assert status == 1, progress
    manifest = read_manifest(run_dir)
    cells = {c["cell_id"]: c for c in manifest["cells"]}
    assert len(cells) == 4, cells
    reasons = set()
    for cell_id, cell in cells.items():
        if cell["scenario"] == "db":
            assert cell["status"] == "skipped", cell
            assert "the database could not start" in cell["error"], cell["error"]
            assert "install PostgreSQL" in cell["error"], cell["error"]
            reasons.add(cell["error"])
        else:
            assert cell["status"] == "ok", cell
            assert summary_rps(run_dir, cell_id) > 0
    (reason,) = reasons  # one reason, one line, said in the progress too
    assert "\n" not in reason
    assert any(line.strip() == reason for line in progress.splitlines()), progress
    unavailable = manifest["services"]["database"]["unavailable"]
    assert "install PostgreSQL" in unavailable, manifest["services"]
    assert manifest["status"] == "failed"
    assert (run_dir / "report.md").is_file()


# ---- 4. the database dies in the middle of a cell --------------------------------------------


@pytest.mark.e2e
def test_a_database_killed_mid_cell_fails_that_cell_and_is_restarted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
) -> None:
    started = spy_on_databases(monkeypatch)
    run_dir = tmp_path / "run"
    first, second = "db__fastapi-uvicorn__u4__t1", "db__fastapi-uvicorn__u5__t1"
    killed: list[int] = []

    def kill_the_postmaster() -> None:
        """Once the first cell's window opens, SIGKILL the postmaster (no clean shutdown)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if (run_dir / "raw" / first / "window.json").exists() and started:
                os.kill(started[0].pid, signal.SIGKILL)
                killed.append(started[0].pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_postmaster, name="kill-postmaster")
    with watching(started) as seen:
        killer.start()
        try:
            status = main(
                ["run", "--scenarios", "db", "--targets", "fastapi-uvicorn", "--users", "4,5",
                 "--duration", "3", "--warmup", "1", "--no-verify", "--no-calibrate",
                 "--out", str(run_dir)]
            )  # fmt: skip
        finally:
            killer.join(timeout=130)
    progress = capsys.readouterr().err
    assert killed, f"the first cell's window never opened:\n{progress}"
    assert status == 1, progress
    assert "the database died; starting it again" in progress, progress
    manifest = read_manifest(run_dir)
    cells = {c["cell_id"]: c for c in manifest["cells"]}
    log = run_dir / "raw" / "database.log"
    assert cells[first]["status"] == "failed", cells[first]
    assert "the database died during the cell" in cells[first]["error"], cells[first]["error"]
    assert str(log) in cells[first]["error"], cells[first]["error"]
    assert cells[second]["status"] == "ok", cells[second]
    assert summary_rps(run_dir, second) > 0
    record = manifest["services"]["database"]
    assert record["starts"] == 2 and record["rows"] == SEED_ROWS, record
    assert len(started) == 2 and record["port"] == started[1].port, (record, started)
    # The killed cluster and the one started again: no process and no folder of either left.
    assert len(seen) > 2, seen
    for db in started:
        assert_cluster_gone(db, list(seen.values()))


# ---- 5. the upstream -------------------------------------------------------------------------


@pytest.mark.e2e
def test_upstream_waits_answers_exactly_and_stops(tmp_path: Path) -> None:
    with upstream(tmp_path / "upstream.log") as up:
        assert up.alive()
        status, body, took = get(f"{up.url}/wait?ms=50")
        assert status == 200 and body == b'{"ms":50,"upstream":"ok"}', body
        assert took >= 0.050, took
        status, body, _ = get(f"{up.url}/wait?ms=x")
        assert status == 400 and b"ms must be a whole number" in body, body
        procs = family(up.pid)
    assert not up.alive()
    assert not still_running(procs), still_running(procs)
    with pytest.raises(OSError):
        get(f"{up.url}/health")


# ---- 6. a normal db run, the verify gate on --------------------------------------------------


@pytest.mark.e2e
@pytest.mark.solo  # the verify gate times /db?ms=50 (±10%): alone, like make test runs it
def test_a_db_run_verifies_measures_and_leaves_no_postgresql(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
) -> None:
    started = spy_on_databases(monkeypatch)
    run_dir = tmp_path / "run"
    with watching(started) as seen:
        status = main(
            ["run", "--scenarios", "db", "--targets", "fastapi-uvicorn", "--users", "3",
             "--duration", "1.5", "--warmup", "0.5", "--no-calibrate", "--out", str(run_dir)]
        )  # fmt: skip
    progress = capsys.readouterr().err
    assert status == 0, progress
    (db,) = started
    assert f"database ready: {db.version} on port {db.port}" in progress, progress
    manifest = read_manifest(run_dir)
    assert manifest["verify"]["fastapi-uvicorn"]["passed"], manifest["verify"]
    (cell,) = manifest["cells"]
    assert cell["status"] == "ok", cell
    assert summary_rps(run_dir, cell["cell_id"]) > 0
    record = manifest["services"]["database"]
    assert record["starts"] == 1 and record["port"] == db.port and record["rows"] == SEED_ROWS
    assert record["version"] == db.version
    assert len(seen) > 1, seen  # the PostgreSQL processes are gone afterwards
    assert_cluster_gone(db, list(seen.values()))
