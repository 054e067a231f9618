"""Fault injection, end to end: real servers, real locust, things going wrong on purpose.

A target that will not start or dies mid-cell, Ctrl-C and SIGTERM, resume, two runs at
once, broken scenario files and option values, a target that answers errors or too
slowly, a harness killed outright, a load generator that crashes. Each test checks what
lands on disk, the exit status, and that no child process outlives the run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import targets.registry
from harness.cli import main
from harness.run import external
from harness.run import servers as harness_servers
from harness.run.session import RunLock
from harness.schema import SUMMARY_COLUMNS
from targets.registry import TARGETS

PROJECT = Path(__file__).resolve().parent.parent

# Marks: e2e where a server or locust starts; cli where the harness refuses before either
# does. Short cells; the gate and the calibration only where they are the point.
QUICK = ("--no-verify", "--no-calibrate", "--warmup", "0")
SERVER_APPS = ("targets.flask_app:app", "targets.fastapi_app:app")
CHILD_GONE_S = 5.0  # every child of an interrupted run is gone this soon after the signal


# ---- helpers ---------------------------------------------------------------------------------


def harness_env(scenarios: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GATEBENCH_SCENARIOS", None)
    # This checkout's harness even where the cwd is elsewhere (serve runs in tmp_path).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    if scenarios is not None:
        env["GATEBENCH_SCENARIOS"] = str(scenarios)
    return env


def harness(
    *args: str, scenarios: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=PROJECT,
        env=harness_env(scenarios),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def background(
    args: list[str], log_dir: Path, scenarios: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m harness ARGS`` in the background; ended (SIGTERM, then SIGKILL) on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / "harness.stdout.txt", "wb") as out,
        open(log_dir / "harness.stderr.txt", "wb") as err,
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            cwd=PROJECT,
            env=harness_env(scenarios),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def stderr_of(log_dir: Path) -> str:
    return (log_dir / "harness.stderr.txt").read_text(errors="replace")


def wait_for(
    check: Callable[[], Any],
    what: str,
    timeout: float = 60,
    proc: Any = None,
    interval: float = 0.05,
) -> Any:
    """Poll check() until it returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the harness exited ({proc.returncode}) before {what}")
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The ones still running (not exited, not a zombie waiting to be reaped)."""
    running = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
        except psutil.NoSuchProcess:
            continue
    return running


def kill_all(procs: list[psutil.Process]) -> None:
    """Stop every process first (so no master forks a replacement worker), then kill them."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.suspend()
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


def answers(server_cmdline: str) -> bool:
    """Whether the target server with this command line answers /health."""
    args = server_cmdline.split()
    if not any(app in args for app in SERVER_APPS):
        return False
    if "--port" in args:  # uvicorn
        port = args[args.index("--port") + 1]
    elif "--bind" in args:  # gunicorn
        port = args[args.index("--bind") + 1].rpartition(":")[2]
    else:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def cell_dirs(run_dir: Path) -> list[Path]:
    raw = run_dir / "raw"
    if not raw.is_dir():
        return []
    return sorted(p for p in raw.iterdir() if p.is_dir() and p.name.count("__") == 3)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return manifest


def read_summary(run_dir: Path) -> dict[str, dict[str, str]]:
    """summary.csv rows by cell id."""
    with open(run_dir / "summary.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == SUMMARY_COLUMNS
        return {row["cell_id"]: row for row in reader}


def read_latency(run_dir: Path, cell_id: str) -> dict[str, Any]:
    latency: dict[str, Any] = json.loads((run_dir / "raw" / cell_id / "latency.json").read_text())
    return latency


def folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (exit status 2, no traceback)."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def scenario_folder(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return folder


IO_SCENARIO = (PROJECT / "scenarios" / "io.py").read_text()


# ---- 1. a target that will not start -----------------------------------------------------------


@pytest.mark.e2e
def test_a_target_that_will_not_start_fails_its_cells_and_the_others_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
) -> None:
    assert external.TARGETS is TARGETS  # the session reads the very dict patched here
    base = TARGETS["fastapi-uvicorn"]
    # An app that cannot be imported (uvicorn exits), a missing attribute (gunicorn's
    # workers fail to boot and the master exits), and a command that runs but never
    # answers (the readiness timeout, shortened here).
    marker = f"gatebench-never-ready-{os.getpid()}"
    monkeypatch.setitem(
        targets.registry.SERVER_COMMANDS,
        "never-ready",
        lambda t, host, port, tls: [sys.executable, "-c", "import time; time.sleep(120)", marker],
    )
    monkeypatch.setattr(harness_servers, "READY_TIMEOUT_S", 3.0)
    broken = {
        "broken-import": dataclasses.replace(base, name="broken-import", app="no_such_module:app"),
        "broken-attr": dataclasses.replace(
            TARGETS["flask-gunicorn-sync"], name="broken-attr", app="targets.flask_app:nope"
        ),
        "never-ready": dataclasses.replace(base, name="never-ready", server="never-ready"),
    }
    for name, target in broken.items():
        monkeypatch.setitem(targets.registry.TARGETS, name, target)
    run_dir = tmp_path / "run"
    status = main(
        ["run", "--scenarios", "health", "--targets", ",".join([*broken, "fastapi-uvicorn"]),
         "--users", "2,3", "--duration", "1", *QUICK, "--out", str(run_dir)]
    )  # fmt: skip
    progress = capsys.readouterr().err
    assert status == 1, progress
    cells = {c["cell_id"]: c for c in read_manifest(run_dir)["cells"]}
    rows = read_summary(run_dir)
    assert len(cells) == len(rows) == 8
    for cell_id, cell in cells.items():
        if cell["target"] == "fastapi-uvicorn":
            assert cell["status"] == "ok" and rows[cell_id]["status"] == "ok", cell
            assert int(rows[cell_id]["requests"]) > 0
            continue
        log = run_dir / "raw" / f"server__health__{cell['target']}.log"
        assert cell["status"] == "failed" and rows[cell_id]["status"] == "failed", cell
        assert f"target {cell['target']}" in cell["error"], cell["error"]
        assert str(log) in cell["error"], cell["error"]
        assert log.is_file()
    errors = {c["target"]: c["error"] for c in cells.values()}
    assert "before it was ready" in errors["broken-import"]
    assert "no_such_module" in errors["broken-import"]  # the log's tail is quoted
    assert "before it was ready" in errors["broken-attr"]
    assert "did not answer" in errors["never-ready"]
    assert read_manifest(run_dir)["status"] == "failed"
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in cmdline(p)]


# ---- 2. a target that dies in the middle of a cell -------------------------------------------


@pytest.mark.e2e
def test_a_target_killed_mid_cell_fails_that_cell_and_is_restarted(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = "io__flask-gunicorn-sync__u5__t1"
    args = ["run", "--scenarios", "io", "--targets", "flask-gunicorn-sync", "--users", "5,6,7",
            "--duration", "1.5", "--no-verify", "--no-calibrate", "--warmup", "0.5",
            "--out", str(run_dir)]  # fmt: skip
    with background(args, tmp_path / "logs") as proc:
        wait_for(lambda: (run_dir / "raw" / first / "window.json").exists(), "cell 1", proc=proc)
        masters = [
            p for p in descendants(proc.pid) if "-m gunicorn" in cmdline(p) and p.ppid() == proc.pid
        ]
        assert len(masters) == 1, [cmdline(p) for p in descendants(proc.pid)]
        os.killpg(os.getpgid(masters[0].pid), signal.SIGKILL)
        status = proc.wait(timeout=120)
    progress = stderr_of(tmp_path / "logs")
    assert status == 1, progress
    assert "died; starting it again" in progress
    log = run_dir / "raw" / "server__io__flask-gunicorn-sync.log"
    cells = read_manifest(run_dir)["cells"]
    assert [c["status"] for c in cells] == ["failed", "ok", "ok"], cells
    assert "died" in cells[0]["error"] and str(log) in cells[0]["error"], cells[0]["error"]
    # The errors the users met once the server was gone are counted, not thrown away.
    latency = read_latency(run_dir, first)
    assert latency["failures"] > 0 and latency["failures_by_kind"], latency["failures_by_kind"]
    rows = read_summary(run_dir)
    assert rows[first]["status"] == "failed" and int(rows[first]["failures"]) > 0
    for cell in cells[1:]:
        row = rows[cell["cell_id"]]
        assert int(row["failures"]) == 0 and float(row["rps"]) > 0, row


# ---- 5. two runs at once ---------------------------------------------------------------------


def one_cell(out: Path) -> list[str]:
    return ["run", "--scenarios", "health", "--targets", "fastapi-uvicorn", "--users", "2",
            "--duration", "1", *QUICK, "--out", str(out)]  # fmt: skip


@pytest.mark.e2e
def test_two_runs_at_once_into_different_folders_both_succeed(tmp_path: Path) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    with (
        background(one_cell(outs[0]), tmp_path / "la") as a,
        background(one_cell(outs[1]), tmp_path / "lb") as b,
    ):
        statuses = [a.wait(timeout=120), b.wait(timeout=120)]
    assert statuses == [0, 0], [stderr_of(tmp_path / n) for n in ("la", "lb")]
    hosts, windows = [], []
    for out in outs:
        (cell,) = cell_dirs(out)
        latency = read_latency(out, cell.name)
        hosts.append(latency["host"])  # the server the cell's stage loaded
        windows.append((latency["window_start"], latency["window_end"]))
    assert all(h.startswith("http://127.0.0.1:") for h in hosts), hosts
    (start_a, end_a), (start_b, end_b) = windows
    if start_a < end_b and start_b < end_a:  # measured at the same time: two servers, two ports
        assert hosts[0] != hosts[1]


@pytest.mark.e2e
def test_two_runs_at_once_into_the_same_folder_one_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "same"
    with (
        background(one_cell(out), tmp_path / "la") as a,
        background(one_cell(out), tmp_path / "lb") as b,
    ):
        statuses = [a.wait(timeout=120), b.wait(timeout=120)]
    errors = [stderr_of(tmp_path / n) for n in ("la", "lb")]
    assert sorted(statuses) == [0, 2], errors
    refused = errors[statuses.index(2)]
    assert "Traceback" not in refused and len(refused.strip().splitlines()) == 1, refused
    assert str(out) in refused and "cells" not in refused
    manifest = read_manifest(out)
    assert manifest["status"] == "complete" and len(manifest["cells"]) == 1
    assert len(cell_dirs(out)) == 1


@pytest.mark.cli
def test_a_folder_locked_by_another_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "locked"
    out.mkdir()
    with RunLock(out):
        done = harness(*one_cell(out))
    line = one_line_error(done)
    assert str(out) in line and "another gatebench run" in line
    assert not (out / "manifest.json").exists()


@pytest.mark.cli
def test_out_on_a_folder_holding_a_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "manifest.json").write_text('{"status": "complete"}\n')
    line = one_line_error(harness(*one_cell(out)))
    assert str(out) in line and "manifest.json" in line
    assert (out / "manifest.json").read_text() == '{"status": "complete"}\n'
    assert not (out / "raw").exists()


# ---- 6. broken scenario files ------------------------------------------------------------------

USER = (
    "class U(FastHttpUser):\n{host}    @task\n    def t(self) -> None:\n"
    '        self.client.get("/health")\n'
)
HEADER = '"""A broken scenario."""\n\nfrom locust import FastHttpUser, task\n\n'


@pytest.mark.cli
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (HEADER + "def oops(:\n", "syntax error"),
        (HEADER + "x = 1\n", "no locust User class"),
        (HEADER + 'settings = {"users": [0]}\n\n' + USER.format(host=""), "users"),
        (HEADER + USER.format(host='    host = "http://example.com"\n'), "hard-codes a host"),
    ],
    ids=["syntax-error", "no-user-class", "users-0", "hard-coded-host"],
)
def test_a_broken_scenario_file_is_refused_before_anything_runs(
    tmp_path: Path, text: str, problem: str
) -> None:
    scenarios = scenario_folder(tmp_path / "scenarios", broken=text)
    out = tmp_path / "run"
    done = harness(
        "run", "--scenarios", "broken", "--targets", "fastapi-uvicorn", "--duration", "1",
        *QUICK, "--out", str(out), scenarios=scenarios,
    )  # fmt: skip
    line = one_line_error(done)
    assert str(scenarios / "broken.py") in line and problem in line, line
    assert not out.exists()


# ---- 7. bad option values (the rest is in test_e2e.py) ---------------------------------------


@pytest.mark.cli
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rates", "0"),
        ("--rates", "abc"),
        ("--arrivals", "weird"),
        ("--stall-at", "-1"),
        ("--server-cpus", "99"),
        ("--trials", "2,3"),
    ],
)
def test_a_bad_option_value_is_one_line_and_exit_2(tmp_path: Path, option: str, value: str) -> None:
    out = tmp_path / "run"
    done = harness(
        "run", "--scenarios", "health", "--targets", "fastapi-uvicorn", "--users", "1",
        "--duration", "1", *QUICK, "--out", str(out), option, value,
    )  # fmt: skip
    assert option in one_line_error(done)
    assert not out.exists()


# ---- 8. a target that answers errors or too slowly -----------------------------------------------

ERRORS_SCENARIO = '''\
"""Every other request is refused (422); the rest wait 10 ms."""

from locust import FastHttpUser, constant, task

settings = {"service_time_ms": 10}


class HalfErrorsUser(FastHttpUser):
    wait_time = constant(0)
    turn = 0

    @task
    def mixed(self) -> None:
        self.turn += 1
        if self.turn % 2:
            self.client.get("/io?ms=-1", name="/io?ms=-1")
        else:
            self.client.get("/io?ms=10", name="/io?ms=10")
'''

TIMEOUTS_SCENARIO = '''\
"""Every request times out: the server takes 2 s, the client waits 0.5 s."""

from locust import FastHttpUser, constant, task


class TimeoutUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 0.5

    @task
    def slow(self) -> None:
        self.client.get("/stall?ms=2000", name="/stall?ms=2000")
'''


def error_rate_flag(row: dict[str, str]) -> str:
    """The flag a cell with this summary row's error rate gets (above 5%)."""
    return f"error rate {round(float(row['error_rate']) * 100, 1):g}% > 5%"


@pytest.mark.e2e
def test_errors_and_timeouts_under_load_are_counted_by_kind_and_flagged(tmp_path: Path) -> None:
    scenarios = scenario_folder(
        tmp_path / "scenarios", errors=ERRORS_SCENARIO, timeouts=TIMEOUTS_SCENARIO
    )
    run_dir = tmp_path / "run"
    done = harness(
        "run", "--scenarios", "errors,timeouts", "--targets", "fastapi-uvicorn",
        "--users", "2", "--duration", "1", "--no-verify", "--no-calibrate", "--warmup", "0.5",
        "--out", str(run_dir), scenarios=scenarios,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # errors from the target are data, not a crash
    rows = read_summary(run_dir)
    report = (run_dir / "report.md").read_text()

    errors_id = "errors__fastapi-uvicorn__u2__t1"
    latency = read_latency(run_dir, errors_id)
    assert latency["failures_by_kind"] == {"HTTP 422": latency["failures"]}
    requests = latency["successes"] + latency["failures"]
    by_name = latency["by_name"]
    assert by_name["GET /io?ms=-1"]["successes"] == 0
    assert by_name["GET /io?ms=10"]["failures"] == 0
    row = rows[errors_id]
    assert row["status"] == "ok"
    assert int(row["requests"]) == requests and int(row["failures"]) == latency["failures"]
    assert float(row["error_rate"]) == pytest.approx(latency["failures"] / requests)
    assert abs(float(row["error_rate"]) - 0.5) < 0.05
    # p50 comes from the successful /io?ms=10 requests only; the fast 422s would pull it
    # towards 0 if they were mixed in.
    assert float(row["p50_ms"]) >= 10.0
    assert error_rate_flag(row) in row["flags"]

    timeouts_id = "timeouts__fastapi-uvicorn__u2__t1"
    latency = read_latency(run_dir, timeouts_id)
    assert latency["successes"] == 0 and latency["failures"] > 0
    kinds = latency["failures_by_kind"]
    assert kinds and not any(kind.startswith("HTTP") for kind in kinds), kinds
    row = rows[timeouts_id]
    assert float(row["error_rate"]) == 1.0 and row["p50_ms"] == ""
    assert error_rate_flag(row) == "error rate 100% > 5%" and row["flags"].endswith("> 5%")

    for cell_id in (errors_id, timeouts_id):
        assert cell_id in report  # listed among the cells with errors
        assert error_rate_flag(rows[cell_id]) in report  # and flagged in its scenario's table


# ---- 9. the harness killed outright -------------------------------------------------------------


@pytest.mark.e2e
def test_a_harness_killed_outright_leaves_a_readable_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    second = "health__fastapi-uvicorn__u3__t1"
    args = ["run", "--scenarios", "health", "--targets", "fastapi-uvicorn", "--users", "2,3",
            "--duration", "1.5", *QUICK, "--out", str(run_dir)]  # fmt: skip
    children: list[psutil.Process] = []
    try:
        with background(args, tmp_path / "logs") as proc:
            wait_for(
                lambda: (run_dir / "raw" / second / "window.json").exists(), "cell 2", 60, proc
            )
            children = descendants(proc.pid)
            proc.kill()  # SIGKILL: no handler runs, nothing is cleaned up
            assert proc.wait(timeout=10) == -signal.SIGKILL
        # Children live in their own sessions; the parent-death signal and the reaper end
        # them (tests/test_leftovers.py times that). This test is about the folder.
        assert any(app in cmdline(p) for p in children for app in SERVER_APPS), [
            cmdline(p) for p in children
        ]
    finally:
        kill_all(alive(children))  # what SIGKILL skipped; the conftest guard checks this
    assert not alive(children)
    manifest = read_manifest(run_dir)  # written atomically: always whole
    assert manifest["status"] == "running" and manifest["finished_at"] is None
    assert manifest["cells"][0]["status"] == "ok"
    done = harness("report", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert (run_dir / "report.md").is_file()


# ---- 10. the load generator crashes -----------------------------------------------------------

CRASH_SCENARIO = '''\
"""Its users kill their own locust process as they start."""

import os

from locust import FastHttpUser, constant, task


class CrashUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        os._exit(3)

    @task
    def health(self) -> None:
        self.client.get("/health")
'''


@pytest.mark.e2e
def test_a_crashing_load_generator_fails_the_cell_naming_its_stderr(tmp_path: Path) -> None:
    scenarios = scenario_folder(tmp_path / "scenarios", crash=CRASH_SCENARIO)
    run_dir = tmp_path / "run"
    done = harness(
        "run", "--scenarios", "crash", "--targets", "fastapi-uvicorn", "--users", "2",
        "--duration", "1", *QUICK, "--out", str(run_dir), scenarios=scenarios,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (cell,) = read_manifest(run_dir)["cells"]
    stderr_file = run_dir / "raw" / cell["cell_id"] / "locust.stderr.txt"
    assert cell["status"] == "failed"
    assert "status 3" in cell["error"] and str(stderr_file) in cell["error"], cell["error"]
    assert stderr_file.is_file()
    assert read_summary(run_dir)[cell["cell_id"]]["status"] == "failed"


# ---- security: loopback only, no shell ---------------------------------------------------------


@pytest.mark.e2e
def test_serve_binds_loopback_and_stops_its_server_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "fastapi-uvicorn"],
        cwd=tmp_path,  # its log goes to ./results/
        env=harness_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    children: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "serve printed nothing within 60 s"
        line = proc.stdout.readline()
        url = line.split(" ready at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), line
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            assert response.status == 200
        children = descendants(proc.pid)
        assert any("targets.fastapi_app:app" in cmdline(p) for p in children)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        _, left = psutil.wait_procs(children, timeout=CHILD_GONE_S)
        assert not alive(left), [cmdline(p) for p in left]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        kill_all(alive(children))
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.e2e
def test_serve_stopped_while_its_server_starts_stops_the_server(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "fastapi-uvicorn"],
        cwd=tmp_path,
        env=harness_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    server: list[psutil.Process] = []
    try:

        def started() -> list[psutil.Process]:
            return [p for p in descendants(proc.pid) if "targets.fastapi_app:app" in cmdline(p)]

        server = wait_for(started, "the server process", 60, proc, interval=0.01)
        for child in server:  # held before it can answer: the harness is waiting for it
            child.suspend()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        for child in alive(server):
            child.resume()
        _, left = psutil.wait_procs(server, timeout=CHILD_GONE_S)
        assert proc.stdout is not None and proc.stdout.read() == ""  # it never was ready
        assert not alive(left), f"SIGTERM during start-up left {[cmdline(p) for p in left]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        kill_all(alive(server))
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("name", list(TARGETS))
def test_target_commands_are_argument_lists_without_a_shell(name: str) -> None:
    argv = TARGETS[name].command("127.0.0.1", 8123)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert argv[0] == sys.executable and argv[1] == "-m"
    shells = {"sh", "bash", "dash", "zsh", "cmd", "cmd.exe", "powershell"}
    assert not any(Path(a).name in shells for a in argv) and "-c" not in argv
    assert "127.0.0.1" in " ".join(argv) and "0.0.0.0" not in " ".join(argv)


def test_no_subprocess_in_the_harness_uses_a_shell() -> None:
    for path in [*(PROJECT / "harness").glob("*.py"), *(PROJECT / "targets").glob("*.py")]:
        text = path.read_text()
        assert "shell=True" not in text and "os.system(" not in text, path
