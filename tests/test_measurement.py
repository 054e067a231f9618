"""End-to-end checks of the measurement itself: exact percentiles, open vs closed load under
a stall, generator-bound flags, trials, the verify gate and what the manifest records.

Each run is as short as its assertions allow with margin; the comments say what sets it.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.solo]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "summary.csv")


def nearest_rank(sorted_values: list[int], percentile: float) -> int:
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def test_exact_percentiles_agree_with_the_request_log(tmp_path: Path) -> None:
    run_dir = tmp_path / "exact"
    done = run(
        "--scenarios", "io", "--targets", "flask-gunicorn-sync", "--users", "30",
        "--duration", "2.5", "--warmup", "0.5", "--latency-log", "--no-calibrate", "--no-verify",
        "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = summary(run_dir).iloc[0]
    with open(run_dir / "raw" / row["cell_id"] / "requests.csv", newline="") as handle:
        latencies = sorted(int(r["latency_us"]) for r in csv.DictReader(handle))
    assert len(latencies) == row["requests"] - row["failures"] > 100  # 4 slots / 50 ms: ~200
    for column, percentile in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99)):
        direct_ms = nearest_rank(latencies, percentile) / 1000
        # HDR histogram with 3 significant digits: within 0.1% of the direct figure.
        assert row[column] == pytest.approx(direct_ms, rel=1e-3), column
    assert row["max_ms"] == pytest.approx(latencies[-1] / 1000, rel=1e-3)
    # 30 users queue for 4 sync workers: ~375 ms, where locust rounds to 2 digits (10 ms
    # steps); the exact p50 is not on that grid.
    assert row["locust_p50_ms"] % 10 == 0
    assert abs(row["p50_ms"] - row["locust_p50_ms"]) > 0.05


def test_a_stall_shows_in_open_load_and_hides_in_closed_load(tmp_path: Path) -> None:
    run_dir = tmp_path / "stall"
    # 10 s windows: closed, the 20 requests that wait out the stall are ~0.6% of ~3,600, under
    # the 1% that p99 leaves out; open, ~120 of ~4,000 requests (3%) queue for over 700 ms.
    done = run(
        "--scenarios", "io", "--targets", "fastapi-uvicorn", "--users", "20", "--rates", "400",
        "--duration", "10", "--warmup", "1", "--stall-at", "4", "--stall-for", "1",
        "--no-calibrate", "--no-verify", "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = summary(run_dir).set_index("load_model")
    for cell_id in rows["cell_id"]:
        stall = json.loads((run_dir / "raw" / cell_id / "stall.json").read_text())
        assert stall["for_s"] == pytest.approx(1.0, abs=0.1)
    closed, opened = rows.loc["closed"], rows.loc["open"]
    # Closed: 20 users wait out the stall once each, ~20 of ~3,600 requests: p99 barely moves.
    assert closed["p99_ms"] < 150, closed["p99_ms"]
    # Open: 400 arrivals/s keep coming and queue behind the stall: p99 rises by about it.
    assert opened["p99_ms"] > 700, opened["p99_ms"]
    # Timed from the actual send, never more: the requests were sent on time and then waited.
    assert opened["p99_uncorrected_ms"] <= opened["p99_ms"]
    report = (run_dir / "report.md").read_text()
    assert "coordinated omission" in report.lower()


def test_generator_bound_cells_are_flagged_and_io_cells_are_not(tmp_path: Path) -> None:
    run_dir = tmp_path / "flags"
    done = run(
        "--scenarios", "health,io", "--targets", "fastapi-uvicorn", "--users", "64",
        "--duration", "2", "--warmup", "0.5", "--no-verify", "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    ceiling = manifest["calibration"]["rps"]
    assert ceiling > 0
    rows = summary(run_dir).set_index(["scenario", "users"])
    # /health at 64 users is the calibration load itself: the generator's ceiling.
    health = rows.loc[("health", 64)]
    assert bool(health["generator_bound"]), health.to_dict()
    assert isinstance(health["flags"], str) and health["flags"]
    # /io at 64 users: 64 / 50 ms = 1,280 requests/s at most, far below the ceiling.
    io = rows.loc[("io", 64)]
    assert not bool(io["generator_bound"]), io.to_dict()
    report = (run_dir / "report.md").read_text()
    assert health["cell_id"] in report.split("Generator-bound")[1]


def test_trials_verify_and_manifest_records(tmp_path: Path) -> None:
    run_dir = tmp_path / "trials"
    done = run(
        "--scenarios", "io", "--targets", "fastapi-uvicorn,flask-gunicorn-sync",
        "--users", "10", "--trials", "3", "--duration", "1", "--warmup", "0.3",
        "--no-calibrate", "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["pinning"]["server_cpus"] and manifest["pinning"]["generator_cpus"]
    assert manifest["options"]["trials"] == 3
    assert set(manifest["verify"]) == {"fastapi-uvicorn", "flask-gunicorn-sync"}
    assert all(v["passed"] for v in manifest["verify"].values())
    # Trials run in rounds, each on a fresh server: trial 1 of both targets before trial 2.
    targets = ("fastapi-uvicorn", "flask-gunicorn-sync")
    expected = [f"io__{t}__u10__t{trial}" for trial in (1, 2, 3) for t in targets]
    assert manifest["order"] == expected
    started = {c["cell_id"]: c["started_at"] for c in manifest["cells"]}
    assert [started[cid] for cid in expected] == sorted(started.values())
    logs = {p.name for p in (run_dir / "raw").glob("server__io__*.log")}
    assert logs == {f"server__io__{t}__t{trial}.log" for t in targets for trial in (1, 2, 3)}
    for cell_id in expected:
        rows = (run_dir / "raw" / cell_id / "resources.csv").read_text().splitlines()
        assert rows[0] == "t,role,cpu_pct,rss_mb,procs,pss_mb,conns,steal_pct"
        assert {"server", "generator", "harness"} <= {line.split(",")[1] for line in rows[1:]}
    table = summary(run_dir)
    assert len(table) == 6
    for _, group in table.groupby("target"):
        assert set(group["trial"]) == {1, 2, 3}
        assert (group["trials"] == 3).all()
        median = sorted(group["rps"])[1]
        assert group["rps_median"].iloc[0] == pytest.approx(median)
        assert (group["rps_ci_low"] <= median).all() and (group["rps_ci_high"] >= median).all()
