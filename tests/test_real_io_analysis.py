"""Real I/O in the analysis: summary columns, the pool and database ceilings, report and chart.

Synthetic runs only (``analysis_fixtures.make_run(real_io=True)``: scenarios "db" and
"upstream" needing a database and an upstream service, targets with pools, resources.csv with
"database" and "upstream" rows); no server, database or upstream is started here.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from analysis_fixtures import (
    DB,
    GTHREAD,
    OUTSIDE_CPU,
    POOL_TOTALS,
    REAL_IO_CELLS,
    SERVICE_RSS_PEAK,
    SMALLPOOL,
    UPSTREAM,
    FakeRun,
    make_run,
    real_io_cell_id,
)

from harness import schema
from harness.charts.common import target_colours
from harness.charts.draw import run_wide_charts
from harness.charts.paths import real_io_chart_path
from harness.charts.real_io import real_io_chart
from harness.report.markdown import render_report
from harness.results.folder import Results, load
from harness.results.real_io import common_level, real_io_scenarios
from harness.results.roofline import CellLoad, limiter_text, roofline
from harness.results.summary import build_summary, scenario_needs, write_summary

NEW_COLUMNS = ("database_cpu_pct", "database_rss_mb", "upstream_cpu_pct", "pool_total")
FASTAPI = "fastapi-uvicorn"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> FakeRun:
    run = make_run(tmp_path_factory.mktemp("real_io"), real_io=True)
    write_summary(run.run_dir)
    return run


@pytest.fixture(scope="module")
def summary(real_run: FakeRun) -> pd.DataFrame:
    return build_summary(real_run.run_dir).set_index("cell_id")


def text(line_cell: CellLoad) -> str:
    line = roofline(line_cell)
    return limiter_text(line.limiter, line.lowest, line_cell, line.efficiency)


# ---- schema and summary columns ----------------------------------------------------------------


def test_columns_appended_after_the_generator_columns_schema_6() -> None:
    columns = schema.SUMMARY_COLUMNS
    start = columns.index("worker_cpu_max_pct") + 1
    assert columns[start : start + len(NEW_COLUMNS)] == NEW_COLUMNS
    assert schema.SCHEMA_VERSION >= 6


def test_service_figures_over_the_window_only(summary: pd.DataFrame) -> None:
    _rps, server_cpu, database_cpu = REAL_IO_CELLS[(DB, GTHREAD, 100)]
    row = summary.loc[real_io_cell_id(DB, GTHREAD, 100)]
    assert row["database_cpu_pct"] == pytest.approx(database_cpu)  # warm-up/tail rows dropped
    assert row["database_cpu_pct"] < OUTSIDE_CPU
    assert row["database_rss_mb"] == pytest.approx(SERVICE_RSS_PEAK)
    assert row["server_cpu_pct"] == pytest.approx(server_cpu)
    assert pd.isna(row["upstream_cpu_pct"])  # not sampled: empty, never 0
    _, _, upstream_cpu = REAL_IO_CELLS[(UPSTREAM, FASTAPI, 100)]
    up = summary.loc[real_io_cell_id(UPSTREAM, FASTAPI, 100)]
    assert up["upstream_cpu_pct"] == pytest.approx(upstream_cpu)
    assert pd.isna(up["database_cpu_pct"]) and pd.isna(up["database_rss_mb"])


def test_pool_total_only_for_real_io_cells(summary: pd.DataFrame) -> None:
    for (scenario, target, users), _figures in REAL_IO_CELLS.items():
        row = summary.loc[real_io_cell_id(scenario, target, users)]
        assert row["pool_total"] == POOL_TOTALS[target]
    assert str(summary["pool_total"].dtype) == "Int64"
    # fastapi-uvicorn has a pool in this run, but io needs neither service: empty.
    io = summary.loc[FakeRun.cell_id(FASTAPI, 100)]
    assert pd.isna(io["pool_total"]) and pd.isna(io["database_cpu_pct"])


def test_written_csv_keeps_empty_cells_empty(real_run: FakeRun) -> None:
    path = real_run.run_dir / schema.SUMMARY_FILE
    with path.open(newline="") as handle:
        rows = {r["cell_id"]: r for r in csv.DictReader(handle)}
    io = rows[FakeRun.cell_id(FASTAPI, 10)]
    assert all(io[column] == "" for column in NEW_COLUMNS)
    db = rows[real_io_cell_id(DB, SMALLPOOL, 10)]
    assert db["pool_total"] == "8" and float(db["database_cpu_pct"]) > 0


def test_limiters_in_the_summary(summary: pd.DataFrame) -> None:
    fastapi = summary.loc[real_io_cell_id(DB, FASTAPI, 100)]
    assert fastapi["limiter"] == "pool"
    assert fastapi["limited_by"] == "the connection pool: 10 / 50 ms"
    assert fastapi["bound_rps"] == pytest.approx(200)
    small = summary.loc[real_io_cell_id(DB, SMALLPOOL, 100)]
    assert small["limiter"] == "pool" and small["bound_rps"] == pytest.approx(8 / 0.05)
    gthread = summary.loc[real_io_cell_id(DB, GTHREAD, 100)]
    assert gthread["limiter"] == "database"
    assert gthread["bound_rps"] == pytest.approx(560 * 100 / (30 + 62))
    assert gthread["limited_by"] == (
        "the database's CPU: 62% of the server's core (with the server: 92%)"
    )
    # pool 8 x 4 workers = 32 slots: the pool is not the smaller, the ceiling stays "slots".
    upstream = summary.loc[real_io_cell_id(UPSTREAM, GTHREAD, 100)]
    assert upstream["limiter"] == "slots" and "pool" not in str(upstream["ceilings"])
    assert "database" not in str(upstream["ceilings"])  # the upstream has CPUs of its own


def test_scenario_needs_from_the_manifest_entry() -> None:
    assert scenario_needs({"settings": {"needs": "database"}}) == "database"
    assert scenario_needs({"needs": "upstream", "settings": {}}) == "upstream"
    assert scenario_needs({"needs": None, "settings": {"service_time_ms": 50}}) is None
    assert scenario_needs({"settings": {"needs": "a cache"}}) is None
    assert scenario_needs(None) is None


# ---- the roofline ------------------------------------------------------------------------------

DB_CELL = CellLoad(
    users=100, rps=190, service_time_ms=50, server_cpu_pct=20, server_budget_pct=100,
    generator_cpu_pct=30,
)  # fmt: skip


def test_event_loop_unbounded_slots_become_the_pool() -> None:
    cell = replace(DB_CELL, slots=None, pool_total=10)
    line = roofline(cell)
    assert line.ceilings["pool"] == pytest.approx(200) and "slots" not in line.ceilings
    assert line.limiter == "pool"
    assert text(cell) == "the connection pool: 10 / 50 ms"
    with_overhead = replace(cell, overhead_ms=0.5)
    assert text(with_overhead) == "the connection pool: 10 / 50.5 ms"


def test_pool_smaller_than_slots_is_named_pool_else_slots() -> None:
    small = roofline(replace(DB_CELL, rps=150, slots=32, pool_total=8))
    assert small.limiter == "pool" and small.bound_rps == pytest.approx(160)
    equal = roofline(replace(DB_CELL, rps=600, slots=32, pool_total=32))
    assert equal.limiter == "slots" and "pool" not in equal.ceilings
    # The blocked-loop pitfall: 1 slot, a pool of 10: the slot holds.
    blocked = replace(DB_CELL, rps=19.5, slots=1, pool_total=10)
    assert roofline(blocked).limiter == "slots"
    assert text(blocked) == "the server's slots: 1 / 50 ms"
    # Not a real-I/O cell: no pool, unchanged.
    assert roofline(replace(DB_CELL, slots=4, rps=78)).limiter == "slots"


def test_balance_is_judged_against_the_pool() -> None:
    # 4 workers x 8 threads but a pool of 2 each (threads passed as min(threads, pool)):
    # connections 3/17/2/28 -> usable 2 + 2 + 2 + 2 = 8 = pool_total: no balance loss.
    cell = replace(DB_CELL, rps=155, slots=32, pool_total=8, threads=2,
                   connection_samples=[[3, 17, 2, 28]])  # fmt: skip
    line = roofline(cell)
    assert "balance" not in line.ceilings and line.limiter == "pool"


def test_database_limiter_shares_the_server_budget() -> None:
    cell = replace(DB_CELL, rps=560, slots=32, pool_total=32, server_cpu_pct=30,
                   database_cpu_pct=62)  # fmt: skip
    line = roofline(cell)
    assert line.ceilings["database"] == pytest.approx(560 * 100 / 92)
    assert line.ceilings["server_cpu"] == pytest.approx(560 * 100 / 30)  # the server alone
    assert line.limiter == "database"
    assert text(cell) == "the database's CPU: 62% of the server's core (with the server: 92%)"


def test_shared_ceiling_merges_into_server_cpu_when_the_server_uses_more() -> None:
    cell = replace(DB_CELL, rps=900, server_cpu_pct=70, database_cpu_pct=20, pool_total=100)
    line = roofline(cell)
    assert "database" not in line.ceilings
    assert line.ceilings["server_cpu"] == pytest.approx(900 * 100 / 90)
    assert line.limiter == "server_cpu"
    assert text(cell) == "server CPU: 70% of its core (with the database: 90%)"


def test_shared_budget_of_several_cores() -> None:
    # One uvicorn process (budget 1 core) on 2 pinned cores shared with the database.
    cell = replace(DB_CELL, rps=1000, server_cpu_pct=95, database_cpu_pct=100,
                   shared_budget_pct=200, pool_total=100)  # fmt: skip
    line = roofline(cell)
    assert line.ceilings["database"] == pytest.approx(1000 * 200 / 195)
    assert line.ceilings["server_cpu"] == pytest.approx(1000 * 100 / 95)
    assert line.limiter == "database"
    assert text(cell) == (
        "the database's CPU: 50% of the server's 2 cores (with the server: 97.5%)"
    )


def test_busy_shared_cpu_explains_a_cell_below_its_pool() -> None:
    # rps 100 against a pool ceiling of 115 (0.87): server 50% + database 32% = 82% busy.
    busy = CellLoad(users=100, rps=100, service_time_ms=200, pool_total=23, server_cpu_pct=50,
                    database_cpu_pct=32, server_budget_pct=100)  # fmt: skip
    line = roofline(busy)
    assert line.lowest == "pool" and line.efficiency == pytest.approx(100 / 115)
    assert line.limiter == "pool"
    idle = replace(busy, database_cpu_pct=10)  # 60%: nothing saturated
    line = roofline(idle)
    assert line.limiter == "unexplained"
    assert text(idle) == (
        "unexplained: below its lowest ceiling (the connection pool); server CPU 50%, "
        "database CPU 10%: none saturated"
    )


def test_no_database_measured_no_database_ceiling(tmp_path: Path) -> None:
    cell = replace(DB_CELL, pool_total=10, database_cpu_pct=None)
    assert "database" not in roofline(cell).ceilings
    # A run whose sampler wrote no database rows: the columns stay empty, no database ceiling.
    run = make_run(tmp_path, real_io=True)
    cell_id = real_io_cell_id(DB, GTHREAD, 100)
    path = run.run_dir / schema.RAW_DIR / cell_id / schema.RESOURCES_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if ",database," not in line) + "\n")
    row = build_summary(run.run_dir).set_index("cell_id").loc[cell_id]
    assert pd.isna(row["database_cpu_pct"]) and pd.isna(row["database_rss_mb"])
    assert "database" not in str(row["ceilings"])
    assert str(row["ceilings"]).startswith("slots 640")
    assert row["limiter"] == "unexplained"  # 560 of 640, server CPU 30%: nothing busy


# ---- report and chart --------------------------------------------------------------------------


def test_report_section_with_a_table_per_scenario(real_run: FakeRun) -> None:
    results = load(real_run.run_dir)
    assert [s.name for s in real_io_scenarios(results)] == [DB, UPSTREAM]
    assert all(common_level(s) == 100 for s in real_io_scenarios(results))
    report = render_report(results)
    start = report.index("## Real I/O")
    section = report[start : report.index("\n## ", start + 5)]
    assert "min(slots, pool) / S" in section
    assert "### `db`: a real query to PostgreSQL through the target's connection pool, at " \
        "100 users" in section  # fmt: skip
    assert "### `upstream`: a real HTTP call" in section
    assert "| target | pool | rps | p99 ms | bound rps | limited by | database CPU % |" in section
    assert "| upstream CPU % |" in section
    assert "| fastapi-uvicorn | 10 | 196.0 |" in section
    assert "the connection pool: 10 / 50 ms" in section
    assert "the database's CPU: 62% of the server's core" in section
    # Near the other per-topic sections: before the per-scenario ones.
    assert start < report.index("## Scenario `io`")


def test_no_real_io_no_section_and_no_chart(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    results = load(run.run_dir)
    assert real_io_scenarios(results) == []
    assert "## Real I/O" not in render_report(results)
    path = real_io_chart_path(run.run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stale")  # from an earlier drawing: removed, never shown
    written = run_wide_charts(results, target_colours(results.target_names))
    assert path not in written and not path.exists()


def test_chart_written_and_linked(real_run: FakeRun) -> None:
    results = load(real_run.run_dir)
    written = run_wide_charts(results, target_colours(results.target_names))
    path = real_io_chart_path(real_run.run_dir)
    assert path in written and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![real I/O throughput](charts/real_io.png)" in render_report(results)


def test_chart_with_a_wide_spread_draws_on_a_log_axis(real_run: FakeRun, tmp_path: Path) -> None:
    results = load(real_run.run_dir)
    summary = results.summary.copy()
    blocked = summary["target"].eq(SMALLPOOL).fillna(False)
    summary.loc[blocked, ["rps", "bound_rps"]] = [19.0, 20.0]  # a blocked loop near 1 / S
    wide = Results(results.manifest, summary, results.run_dir)
    out = real_io_chart(wide, target_colours(wide.target_names), tmp_path / "wide.png")
    assert out is not None and out.stat().st_size > 10_000


def test_services_from_the_manifest(real_run: FakeRun) -> None:
    results = load(real_run.run_dir)
    manifest = dict(results.manifest)
    manifest["services"] = {
        "database": {"version": "15.10", "rows": 10000, "settings": {"fsync": "off"}},
        "upstream": {"unavailable": "port 8000 taken"},
    }
    report = render_report(Results(manifest, results.summary, results.run_dir))  # type: ignore[arg-type]
    assert "- PostgreSQL 15.10, 10,000 rows seeded; settings: fsync=off." in report
    assert "- The upstream was unavailable: port 8000 taken." in report
