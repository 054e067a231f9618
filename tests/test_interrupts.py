"""Fault injection, end to end: Ctrl-C and SIGTERM during a run, and resuming it.

Split from ``tests/test_faults.py`` (whose helpers it uses) so the two files run on separate
test workers. Each test checks what lands on disk, the exit status, and that no child
process outlives the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_faults import (
    CHILD_GONE_S,
    IO_SCENARIO,
    QUICK,
    SERVER_APPS,
    alive,
    answers,
    background,
    cell_dirs,
    cmdline,
    descendants,
    folder_state,
    harness,
    one_line_error,
    read_latency,
    read_manifest,
    read_summary,
    scenario_folder,
    stderr_of,
    wait_for,
)

from harness import cli as harness_cli
from harness.cli import main
from harness.run import generators as harness_generators
from harness.run import runner as harness_runner
from harness.run import servers as harness_servers
from harness.run.session import RunLock

# ---- 3. Ctrl-C and SIGTERM during a run ------------------------------------------------------


@dataclasses.dataclass
class Interrupted:
    run_dir: Path
    scenarios: Path
    status: int
    progress: str
    children: list[str]  # command lines of the processes alive when the signal was sent
    leftovers: list[str]  # ... and of those still alive CHILD_GONE_S after it


# name -> (signals sent 0.2 s apart, when): "cell" is the second cell's locust running,
# "verify" the first server of the verify gate starting.
INTERRUPTS: dict[str, tuple[tuple[int, ...], str]] = {
    "SIGINT": ((signal.SIGINT,), "cell"),
    "SIGTERM": ((signal.SIGTERM,), "cell"),
    "SIGINT-twice": ((signal.SIGINT, signal.SIGINT), "cell"),
    "SIGINT-in-verify": ((signal.SIGINT,), "verify"),
}


def interrupt_a_run(folder: Path, signals: tuple[int, ...], when: str) -> Interrupted:
    """A 4-cell run (2 targets x 2 user counts) interrupted by `signals` at `when`."""
    scenarios = scenario_folder(folder / "scenarios", io=IO_SCENARIO)
    run_dir = folder / "run"
    quick = QUICK if when == "cell" else QUICK[1:]  # "verify": the gate runs
    args = ["run", "--scenarios", "io", "--targets", "flask-gunicorn-sync,fastapi-uvicorn",
            "--users", "2,3", "--duration", "1.5", *quick, "--out", str(run_dir)]  # fmt: skip
    logs = folder / "logs"
    with background(args, logs, scenarios) as proc:

        def ready() -> list[psutil.Process]:
            """The children once the moment has come (the processes to watch), else [].

            Never just as a child starts: a signal then is a separate case (below).
            """
            kids = descendants(proc.pid)
            lines = [cmdline(k) for k in kids]
            if when == "verify":
                assert not cell_dirs(run_dir), "a cell started before the verify gate"
                # The gate's first server answers: the harness is checking it.
                return kids if any(answers(line) for line in lines) else []
            # The second cell's locust has spawned its users (it writes window.json then).
            second = cell_dirs(run_dir)[1:2]
            return kids if second and (second[0] / "window.json").exists() else []

        children = wait_for(ready, f"the moment to interrupt ({when})", proc=proc)
        lines = [cmdline(p) for p in children]
        for i, signum in enumerate(signals):
            if i:
                time.sleep(0.2)
            proc.send_signal(signum)
        psutil.wait_procs(children, timeout=CHILD_GONE_S)
        leftovers = [cmdline(p) for p in alive(children)]
        status = proc.wait(timeout=60)
    return Interrupted(run_dir, scenarios, status, stderr_of(logs), lines, leftovers)


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Interrupted]:
    """One interrupted run per kind of interruption, shared by the interrupt and resume tests."""
    runs: dict[str, Interrupted] = {}

    def get(name: str) -> Interrupted:
        if name not in runs:
            folder = tmp_path_factory.mktemp(f"interrupted-{name}")
            runs[name] = interrupt_a_run(folder, *INTERRUPTS[name])
        return runs[name]

    return get


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(INTERRUPTS))
def test_an_interrupted_run_stops_every_child_and_saves_the_finished_cells(
    interrupted_run: Callable[[str], Interrupted], name: str
) -> None:
    run = interrupted_run(name)
    assert run.status == 130, run.progress
    assert any(app in line for line in run.children for app in SERVER_APPS), run.children
    assert not run.leftovers, f"alive {CHILD_GONE_S:.0f} s after the signal: {run.leftovers}"
    manifest = read_manifest(run.run_dir)
    assert manifest["status"] == "interrupted"
    statuses = [c["status"] for c in manifest["cells"]]
    if INTERRUPTS[name][1] == "cell":
        # The first cell finished, the second was running: the last two never started.
        assert statuses == ["ok", "interrupted", "pending", "pending"], statuses
    else:  # stopped in the verify gate: no cell started
        assert statuses == ["pending"] * 4, statuses
    assert statuses.count("interrupted") <= 1, statuses
    started = set(manifest.get("order", []))
    for cell in manifest["cells"]:
        if cell["status"] == "pending":
            assert cell["cell_id"] not in started, cell
            assert cell.get("started_at") is None, cell
    rows = read_summary(run.run_dir)
    assert [r["status"] for r in rows.values()] == statuses
    assert (run.run_dir / "report.md").is_file()
    assert "Traceback" not in run.progress, run.progress
    assert f"--resume {run.run_dir}" in run.progress
    done = harness("report", str(run.run_dir))
    assert done.returncode == 0, done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("module", "what"),
    [(harness_servers, "target server"), (harness_generators, "locust")],
    ids=["server", "generator"],
)
def test_an_interrupt_just_as_a_child_starts_still_ends_that_child(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
    module: Any,
    what: str,
) -> None:
    """Ctrl-C can land on any bytecode: here, as start_process returns (its files closing).

    The signal handler raises KeyboardInterrupt wherever the main thread is; simulated
    deterministically by raising it right after the child was started.
    """
    real = harness_servers.start_process
    started: list[subprocess.Popen[bytes]] = []

    def interrupted_start(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real(*args, **kwargs)
        started.append(proc)
        raise KeyboardInterrupt  # as if Ctrl-C arrived before the caller got `proc`

    monkeypatch.setattr(module, "start_process", interrupted_start)
    run_dir = tmp_path / "run"
    try:
        status = main(
            ["run", "--scenarios", "health", "--targets", "fastapi-uvicorn", "--users", "2",
             "--duration", "10", *QUICK, "--out", str(run_dir)]
        )  # fmt: skip
        assert status == 130, capsys.readouterr().err
        assert len(started) == 1
        assert read_manifest(run_dir)["status"] == "interrupted"
        left_running = False
        try:
            started[0].wait(timeout=CHILD_GONE_S)
        except subprocess.TimeoutExpired:
            left_running = True
        assert not left_running, f"the {what} started just before Ctrl-C was left running"
    finally:
        for proc in started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


RESULT_LINE = re.compile(r"^    [\d,.]+ rps, \d+ failures")
CELL_LINE = re.compile(r"^\[\d+/\d+\] (?P<scenario>\S+) x (?P<target>\S+) x (?P<users>\d+) users")


def result_lines(progress: str) -> dict[tuple[str, str, int], str]:
    """The result line printed after each cell's progress line, by (scenario, target, users)."""
    lines = progress.splitlines()
    found: dict[tuple[str, str, int], str] = {}
    for line, following in itertools.pairwise(lines):
        header = CELL_LINE.match(line)
        if header and RESULT_LINE.match(following):
            key = (header["scenario"], header["target"], int(header["users"]))
            found[key] = following
    return found


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_marks_only_the_running_cell_and_prints_every_finished_one(
    interrupted_run: Callable[[str], Interrupted], name: str
) -> None:
    run = interrupted_run(name)
    cells = read_manifest(run.run_dir)["cells"]
    statuses = [c["status"] for c in cells]
    running = statuses.index("interrupted")
    assert statuses.count("interrupted") == 1, statuses
    assert all(s == "ok" for s in statuses[:running]), statuses
    assert statuses[running + 1 :] and all(s == "pending" for s in statuses[running + 1 :])
    printed = result_lines(run.progress)
    ok = [(c["scenario"], c["target"], c["users"]) for c in cells if c["status"] == "ok"]
    assert ok, statuses
    for key in ok:
        assert key in printed, f"no result line for the finished cell {key}:\n{run.progress}"
    interrupted = cells[running]
    assert (interrupted["scenario"], interrupted["target"], interrupted["users"]) not in printed
    assert len(printed) == len(ok), run.progress


@pytest.mark.e2e
@pytest.mark.parametrize("moment", ["cell-returned", "saving"])
def test_a_signal_as_a_cell_completes_keeps_it_ok_and_prints_its_result(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_signals: None,
    moment: str,
) -> None:
    """SIGTERM right after the first cell's measurement completed: that cell is ok and its
    result line printed; the second never started, so it stays pending.

    "cell-returned": the signal lands as run_stage returns; "saving": as the finished cell's
    manifest is being saved. The real handler (cli) raises KeyboardInterrupt at once.
    """
    monkeypatch.setattr(harness_cli, "_interrupted", False)  # a fresh run's handler
    real_stage = harness_runner.run_stage
    real_save = harness_runner.save_manifest
    completed: list[str] = []

    def stage_then_signal(cell: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_stage(cell, *args, **kwargs)
        completed.append(cell.cell_id)
        if moment == "cell-returned":
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    def save_then_signal(*args: Any, **kwargs: Any) -> Any:
        saved = real_save(*args, **kwargs)
        if moment == "saving" and len(completed) == 1:
            completed.append("signalled")
            os.kill(os.getpid(), signal.SIGTERM)
        return saved

    monkeypatch.setattr(harness_runner, "run_stage", stage_then_signal)
    monkeypatch.setattr(harness_runner, "save_manifest", save_then_signal)
    run_dir = tmp_path / "run"
    status = main(
        ["run", "--scenarios", "health", "--targets", "fastapi-uvicorn", "--users", "2,3",
         "--duration", "1", *QUICK, "--out", str(run_dir)]
    )  # fmt: skip
    progress = capsys.readouterr().err
    assert status == 130, progress
    cells = read_manifest(run_dir)["cells"]
    assert [c["status"] for c in cells] == ["ok", "pending"], progress
    printed = result_lines(progress)
    assert list(printed) == [("health", "fastapi-uvicorn", 2)], progress
    assert "Traceback" not in progress, progress


# ---- 4. resume -------------------------------------------------------------------------------


@pytest.fixture
def interrupted_copy(
    interrupted_run: Callable[[str], Interrupted], tmp_path: Path
) -> tuple[Path, Path]:
    """A copy of the run interrupted by SIGINT in its second cell, and its scenario folder."""
    original = interrupted_run("SIGINT")
    run_dir = tmp_path / "run"
    shutil.copytree(original.run_dir, run_dir)  # copy2: modification times are kept
    return run_dir, original.scenarios


@pytest.mark.e2e
def test_resume_runs_only_the_unfinished_cells(interrupted_copy: tuple[Path, Path]) -> None:
    run_dir, scenarios = interrupted_copy
    before = read_manifest(run_dir)["cells"]
    ok = [c["cell_id"] for c in before if c["status"] == "ok"]
    todo = [c["cell_id"] for c in before if c["status"] != "ok"]
    assert len(ok) == 1 and len(todo) == 3
    mtimes = {cid: (run_dir / "raw" / cid / "latency.json").stat().st_mtime_ns for cid in ok}
    done = harness("run", "--resume", str(run_dir), scenarios=scenarios)
    assert done.returncode == 0, done.stderr
    assert "3 of 4 cells to run" in done.stderr
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete"
    assert [c["status"] for c in manifest["cells"]] == ["ok"] * 4
    assert len(manifest["resumed"]) == 1 and manifest["resumed"][0]["cells"] == 3
    for cell_id in ok:
        assert (run_dir / "raw" / cell_id / "latency.json").stat().st_mtime_ns == mtimes[cell_id]
    for cell_id in todo:
        assert read_latency(run_dir, cell_id)["complete"]
    assert {r["status"] for r in read_summary(run_dir).values()} == {"ok"}
    assert not (run_dir / ".lock").exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "extra", [["--users", "3"], ["--duration", "5"], ["--no-verify"]], ids=lambda a: a[0]
)
def test_resume_refuses_new_options(interrupted_copy: tuple[Path, Path], extra: list[str]) -> None:
    run_dir, scenarios = interrupted_copy
    before = folder_state(run_dir)
    done = harness("run", "--resume", str(run_dir), *extra, scenarios=scenarios)
    assert extra[0] in one_line_error(done)
    assert folder_state(run_dir) == before


@pytest.mark.e2e
@pytest.mark.parametrize(
    "extra", [["--profile", "smoke"], ["--arrivals", "fixed"]], ids=lambda a: a[0]
)
def test_resume_refuses_a_profile_or_arrivals_given_on_the_command_line(
    interrupted_copy: tuple[Path, Path], extra: list[str]
) -> None:
    # Both options have defaults, so cmd_run cannot tell them from "not given" and lets
    # them through: the run resumes with its recorded values, the given one is ignored.
    # The lock held here keeps that resume from running cells: refused either way, but
    # only the option check names the option.
    run_dir, scenarios = interrupted_copy
    before = folder_state(run_dir)
    with RunLock(run_dir):
        done = harness("run", "--resume", str(run_dir), *extra, scenarios=scenarios)
    assert extra[0] in one_line_error(done)
    assert folder_state(run_dir) == before


@pytest.mark.e2e
def test_resume_refuses_a_changed_scenario_file(
    interrupted_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, original_scenarios = interrupted_copy
    scenarios = tmp_path / "scenarios"
    shutil.copytree(original_scenarios, scenarios)
    changed = scenarios / "io.py"
    changed.write_text(IO_SCENARIO.replace("ms=50", "ms=60"))
    before = folder_state(run_dir)
    done = harness("run", "--resume", str(run_dir), scenarios=scenarios)
    line = one_line_error(done)
    assert str(changed) in line and "changed" in line
    assert folder_state(run_dir) == before  # nothing ran, nothing was cleared


@pytest.mark.e2e
def test_resume_refuses_a_folder_another_run_is_writing(
    interrupted_copy: tuple[Path, Path],
) -> None:
    run_dir, scenarios = interrupted_copy
    before = folder_state(run_dir)
    with RunLock(run_dir):
        done = harness("run", "--resume", str(run_dir), scenarios=scenarios)
    line = one_line_error(done)
    assert str(run_dir) in line and "another gatebench run" in line
    assert folder_state(run_dir) == before
