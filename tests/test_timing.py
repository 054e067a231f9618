"""harness.run.session.run_timing: measured windows against the command's wall time."""

from __future__ import annotations

import time

import pytest

from harness import schema
from harness.run.session import run_timing
from harness.schema import Cell, CellRecord


def record(
    status: str, started: bool, warmup_s: float = 1.5, duration_s: float = 3.0
) -> CellRecord:
    cell = Cell("io", "fastapi-uvicorn", "closed", 10, None, 1, duration_s, warmup_s, 50.0)
    return CellRecord(
        cell, status=status, started_at="2026-12-01T00:00:00+00:00" if started else None
    )


def test_only_cells_that_ran_count_as_measured() -> None:
    ran = [
        record(schema.STATUS_OK, True),
        record(schema.STATUS_FAILED, True, warmup_s=4.0),  # its window ran, then it failed
        record(schema.STATUS_FAILED, False),  # its server never started: nothing measured
        record(schema.STATUS_INTERRUPTED, True),
    ]
    timing = run_timing(ran, time.monotonic() - 20.0)
    assert timing["measured_s"] == 4.5 + 7.0
    assert timing["elapsed_s"] == pytest.approx(20.0, abs=0.5)
    assert timing["overhead_s"] == pytest.approx(20.0 - 11.5, abs=0.5)
    assert timing["overhead_pct"] == pytest.approx(100 * timing["overhead_s"] / 11.5, abs=0.1)


def test_no_measured_cell_gives_no_share() -> None:
    timing = run_timing([record(schema.STATUS_FAILED, False)], time.monotonic())
    assert timing["measured_s"] == 0 and timing["overhead_pct"] == 0.0
