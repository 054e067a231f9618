"""An overloaded open-load cell, end to end: flagged, measured against what was offered, and
never reported as keeping up."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_an_open_cell_past_its_slots_is_overloaded(tmp_path: Path) -> None:
    # 4 sync workers x 50 ms serve at most 80 requests/s; 200/s are offered.
    run_dir = tmp_path / "overload"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--scenarios", "io",
         "--targets", "flask-gunicorn-sync", "--rates", "200", "--duration", "2",
         "--warmup", "0.5", "--no-calibrate", "--no-verify", "--out", str(run_dir)],
        cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(run_dir / "summary.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["flags"].startswith("overloaded: "), row["flags"]
    offered, completed = float(row["offered"]), float(row["requests"])
    assert completed < 0.6 * offered  # about 80 of every 200
    assert float(row["in_flight_at_end"]) > 50  # the backlog left when the window closed
    assert float(row["efficiency"]) == pytest.approx(float(row["rps"]) / 200)
    assert row["limiter"] == "slots"
    report = (run_dir / "report.md").read_text()
    assert "flask-gunicorn-sync did not keep up: " in report
    assert "kept up" not in report
