"""End-to-end: real servers, real locust, real results folders.

These run ``python -m harness`` as a user would and check what lands on disk. Cells are
as short as their assertions allow; the verify gate over every target is checked once, in
test_verify.py, so the run over every target here skips it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import SharedRun
from conftest import run_harness as harness

from harness.run.scenarios import SCENARIO_DIR, scenario_files
from harness.schema import SUMMARY_COLUMNS
from targets.registry import TARGETS


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == SUMMARY_COLUMNS
        return list(reader)


@pytest.mark.e2e
@pytest.mark.solo
def test_smoke_profile_writes_a_complete_results_folder(smoke_run: SharedRun) -> None:
    run_dir, done = smoke_run.run_dir, smoke_run.done
    assert done.returncode == 0, done.stderr
    assert "[1/4]" in done.stderr and "ETA" in done.stderr  # progress is shown
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # The printed overhead share: 4 cells of 1 s warm-up + 3 s window were measured.
    timing = manifest["timing"]
    assert timing["measured_s"] == 4 * (1.0 + 3.0)
    assert timing["overhead_s"] == pytest.approx(timing["elapsed_s"] - 16.0, abs=0.11)
    line = f"{timing['overhead_s']:.0f} s harness overhead ({timing['overhead_pct']:.1f}%"
    assert "16 s of warm-ups and measurement windows" in done.stderr and line in done.stderr
    assert manifest["status"] == "complete"
    assert manifest["profile"]["name"] == "smoke"
    assert manifest["scenarios"]["io"]["sha256"]
    assert {c["status"] for c in manifest["cells"]} == {"ok"}
    rows = read_summary(run_dir)
    assert len(rows) == 4
    by_key = {(r["target"], int(r["users"])): r for r in rows}
    for row in rows:
        assert float(row["rps"]) > 0 and float(row["p50_ms"]) >= 50.0
        assert float(row["server_cpu_pct"]) > 0 and float(row["generator_cpu_pct"]) > 0
        # Every ok cell has a roofline: a bound, an efficiency and what limited it.
        assert float(row["bound_rps"]) > 0 and float(row["efficiency"]) > 0, row
        assert row["limiter"] and row["limited_by"] and row["ceilings"], row
        assert float(row["server_pss_mb"]) > 0 and float(row["overhead_ms"]) > 0, row
    # 4 sync workers: the slots bind at both loads; one event loop keeps up with the users.
    assert {by_key[("flask-gunicorn-sync", u)]["limiter"] for u in (10, 50)} == {"slots"}
    assert by_key[("fastapi-uvicorn", 10)]["limiter"] == "users"
    # 50 users waiting 50 ms: one event loop holds them all, 4 sync workers hold 4.
    sync = float(by_key[("flask-gunicorn-sync", 50)]["rps"])
    asgi = float(by_key[("fastapi-uvicorn", 50)]["rps"])
    assert sync < 4 / 0.05 * 1.05
    assert asgi > 3 * sync
    charts = list((run_dir / "charts").glob("*.png"))
    assert len(charts) >= 2 and all(c.stat().st_size > 5000 for c in charts)
    report = (run_dir / "report.md").read_text()
    assert "fastapi-uvicorn" in report and "charts/" in report
    assert "**Load generator:** one locust process" in report
    for cell in manifest["cells"]:
        raw = run_dir / "raw" / cell["cell_id"]
        assert (raw / "latency.json").is_file() and (raw / "locust_stats.csv").is_file()


@pytest.mark.e2e
def test_every_scenario_file_runs(tmp_path: Path) -> None:
    names = [p.stem for p in scenario_files()]
    run_dir = tmp_path / "scenarios"
    done = harness(
        "run", "--scenarios", ",".join(names), "--targets", "fastapi-uvicorn",
        "--users", "4", "--duration", "1", "--warmup", "0.3", "--no-calibrate", "--no-verify",
        "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_summary(run_dir)
    assert sorted(r["scenario"] for r in rows) == sorted(names)
    for row in rows:
        assert row["status"] == "ok", row
        assert int(row["requests"]) > 0 and int(row["failures"]) == 0, row


@pytest.mark.e2e
@pytest.mark.solo
def test_every_target_serves_io(tmp_path: Path) -> None:
    # Every target passing the verify gate: test_verify.py::test_real_targets_all_pass.
    run_dir = tmp_path / "targets"
    done = harness(
        "run", "--scenarios", "io", "--targets", ",".join(TARGETS), "--users", "4",
        "--duration", "0.6", "--warmup", "0.2", "--no-calibrate", "--no-verify",
        "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_summary(run_dir)
    # io's users speak HTTP/1.1: the HTTP/2-only rows are left out, and the run says so (they
    # serve h2 in tests/test_protocol_runs.py).
    http2_only = {name for name, target in TARGETS.items() if target.http == "2"}
    assert http2_only and {r["target"] for r in rows} == set(TARGETS) - http2_only
    assert "has users speaking HTTP/1.1, not the HTTP/2 of" in done.stderr + done.stdout
    for row in rows:
        assert row["status"] == "ok", row
        assert int(row["failures"]) == 0, row
        # 4 users waiting 50 ms: every stack but the blocked event loop (1 slot) keeps up.
        slots = TARGETS[row["target"]].slots
        bound = min(4, slots or 4) / 0.05
        assert float(row["rps"]) > 0.8 * bound, row


@pytest.fixture
def copied_scenario() -> object:
    path = SCENARIO_DIR / "zz_e2e_copy.py"
    shutil.copy(SCENARIO_DIR / "io.py", path)
    yield path.stem
    path.unlink(missing_ok=True)


# Solo for another reason: the copy is written into the shared scenarios/ folder, where
# test_scenarios.py and test_profiles.py (on another xdist worker) would discover it too.
@pytest.mark.e2e
@pytest.mark.solo
def test_a_copied_scenario_file_is_listed_and_runs(tmp_path: Path, copied_scenario: str) -> None:
    listed = harness("list")
    assert listed.returncode == 0 and copied_scenario in listed.stdout
    run_dir = tmp_path / "copy"
    done = harness(
        "run", "--scenarios", copied_scenario, "--targets", "fastapi-uvicorn",
        "--users", "2", "--duration", "1", "--warmup", "0", "--no-calibrate", "--no-verify",
        "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_summary(run_dir)[0]["scenario"] == copied_scenario


# Refused before anything starts: no server, no locust (not e2e).
@pytest.mark.cli
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--targets", "nope"], "flask-gunicorn-sync"),
        (["run", "--scenarios", "nope"], "io"),
        (["run", "--users", "0"], "--users"),
        (["run", "--users", "10,,x"], "--users"),
        (["run", "--duration", "-3"], "--duration"),
        (["run", "--duration", "soon"], "--duration"),
        (["run", "--profile", "huge"], "smoke"),
        (["run", "--trials", "0"], "--trials"),
        (["serve", "nope"], "fastapi-uvicorn"),
        (["report", "/nonexistent/run"], "/nonexistent/run"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    done = harness(*args, timeout=60)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in lines[0]
