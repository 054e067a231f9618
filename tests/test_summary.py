"""summary.csv from a run folder: histogram percentiles, bounds, windows, failed cells, loading."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import (
    DURATION_S,
    FAILED_CELL,
    GENERATOR_CPU_MEAN,
    SERVER_CPU_MEAN,
    SERVER_RSS_PEAK,
    THROUGHPUT,
    FakeRun,
    encode,
    make_run,
)

from harness import schema
from harness.histogram import latency_stats
from harness.results import load, per_second, summary_path
from harness.summary import bound_rps, build_summary, write_summary

HDR_PRECISION = 1e-3  # 3 significant digits


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path)


def nearest_rank(values: np.ndarray, percentile: float) -> float:
    """HdrHistogram's percentile definition, computed directly on the raw values."""
    ordered = np.sort(values)
    rank = max(int(percentile * len(ordered) / 100 + 0.5), 1)
    return float(ordered[rank - 1])


def test_percentiles_match_direct_computation() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(np.log(50_000), 0.6, 25_000).astype(np.int64)  # microseconds
    stats = latency_stats(encode(values), "us")
    assert stats.count == len(values)
    expected = {
        "p50_ms": nearest_rank(values, 50),
        "p90_ms": nearest_rank(values, 90),
        "p99_ms": nearest_rank(values, 99),
        "p999_ms": nearest_rank(values, 99.9),
        "max_ms": float(values.max()),
        "mean_ms": float(values.mean()),
    }
    for name, micros in expected.items():
        got = getattr(stats, name)
        assert got == pytest.approx(micros / 1000, rel=HDR_PRECISION), name
    # And against numpy's own percentile where ranks agree well away from the tail.
    assert stats.p50_ms == pytest.approx(np.percentile(values, 50) / 1000, rel=HDR_PRECISION)


def test_empty_histogram_gives_no_figures() -> None:
    for encoded in (encode(np.array([], dtype=np.int64)), None, ""):
        stats = latency_stats(encoded)
        assert stats.count == 0
        assert stats.p50_ms is None and stats.p999_ms is None
        assert stats.max_ms is None and stats.mean_ms is None


def test_summary_has_exactly_the_schema_columns(run: FakeRun) -> None:
    summary = build_summary(run.run_dir)
    assert tuple(summary.columns) == schema.SUMMARY_COLUMNS


def test_one_row_per_cell_in_manifest_order(run: FakeRun) -> None:
    manifest = json.loads((run.run_dir / schema.MANIFEST_FILE).read_text())
    summary = build_summary(run.run_dir)
    assert list(summary["cell_id"]) == [c["cell_id"] for c in manifest["cells"]]


def test_counts_throughput_and_latency(run: FakeRun) -> None:
    summary = build_summary(run.run_dir).set_index("cell_id")
    for (target, users), (rps, failures) in THROUGHPUT.items():
        cell_id = FakeRun.cell_id(target, users)
        row = summary.loc[cell_id]
        values = run.latencies_us[cell_id]
        assert row["rps"] == pytest.approx(len(values) / DURATION_S)
        assert row["rps"] == pytest.approx(rps)
        assert row["requests"] == len(values) + failures
        assert row["failures"] == failures
        assert row["error_rate"] == pytest.approx(failures / (len(values) + failures))
        assert row["p99_ms"] == pytest.approx(nearest_rank(values, 99) / 1000, rel=HDR_PRECISION)
        assert row["max_ms"] == pytest.approx(values.max() / 1000, rel=HDR_PRECISION)
        assert row["interface"] == ("asgi" if target == "fastapi-uvicorn" else "wsgi")
        assert row["status"] == schema.STATUS_OK


@pytest.mark.parametrize(
    ("load_model", "users", "rate", "slots", "service_ms", "expected"),
    [
        ("closed", 10, None, 4, 50.0, 80.0),  # slots bind: 4 / 0.05 s
        ("closed", 2, None, 4, 50.0, 40.0),  # users bind: 2 / 0.05 s
        ("closed", 100, None, None, 50.0, 2000.0),  # unbounded async: users only
        ("closed", 100, None, 32, 100.0, 320.0),
        ("open", 1, 50.0, 4, 50.0, 50.0),  # the offered rate binds
        ("open", 1, 500.0, 4, 50.0, 80.0),  # the server binds
        ("open", 1, 500.0, None, 50.0, 500.0),  # unbounded: the offered rate
        ("closed", 10, None, 4, None, None),  # no service time: no bound
        ("closed", 10, None, 4, 0.0, None),
    ],
)
def test_bound_rps(
    load_model: str,
    users: int,
    rate: float | None,
    slots: int | None,
    service_ms: float | None,
    expected: float | None,
) -> None:
    got = bound_rps(load_model, users, rate, slots, service_ms)
    assert got == (None if expected is None else pytest.approx(expected))


def test_bound_and_efficiency_in_summary(run: FakeRun) -> None:
    summary = build_summary(run.run_dir).set_index("cell_id")
    sync = summary.loc[FakeRun.cell_id("flask-gunicorn-sync", 100)]
    assert sync["slots"] == 4
    assert sync["bound_rps"] == pytest.approx(80.0)
    assert sync["efficiency"] == pytest.approx(77.0 / 80.0)
    asyncio = summary.loc[FakeRun.cell_id("fastapi-uvicorn", 100)]
    assert pd.isna(asyncio["slots"])
    assert asyncio["bound_rps"] == pytest.approx(2000.0)
    assert asyncio["efficiency"] == pytest.approx(1890.0 / 2000.0)


def test_resources_count_only_inside_the_window(run: FakeRun) -> None:
    summary = build_summary(run.run_dir)
    ok = summary[summary["status"] == schema.STATUS_OK]
    # Samples outside the window read 9999 % CPU and 99999 MB; one leak would show.
    assert ok["server_cpu_pct"].tolist() == pytest.approx([SERVER_CPU_MEAN] * len(ok))
    assert ok["server_rss_mb"].tolist() == pytest.approx([SERVER_RSS_PEAK] * len(ok))
    assert ok["generator_cpu_pct"].tolist() == pytest.approx([GENERATOR_CPU_MEAN] * len(ok))


def test_failed_cell_row_has_status_and_empty_figures(run: FakeRun) -> None:
    summary = build_summary(run.run_dir).set_index("cell_id")
    row = summary.loc[FakeRun.cell_id(*FAILED_CELL)]
    assert row["status"] == schema.STATUS_FAILED
    assert row["target"] == FAILED_CELL[0] and row["users"] == FAILED_CELL[1]
    for column in ("requests", "failures", "rps", "p50_ms", "p99_ms", "max_ms", "mean_ms"):
        assert pd.isna(row[column]), column
    for column in ("server_cpu_pct", "efficiency", "locust_rps", "generator_bound"):
        assert pd.isna(row[column]), column
    assert row["bound_rps"] == pytest.approx(80.0)  # known from the plan alone


def test_locust_columns_come_from_the_aggregated_row(run: FakeRun) -> None:
    summary = build_summary(run.run_dir).set_index("cell_id")
    cell_id = FakeRun.cell_id("fastapi-uvicorn", 10)
    stats = pd.read_csv(run.run_dir / schema.RAW_DIR / cell_id / "locust_stats.csv")
    aggregated = stats[stats["Name"] == "Aggregated"].iloc[0]
    row = summary.loc[cell_id]
    assert row["locust_rps"] == pytest.approx(aggregated["Requests/s"])
    assert row["locust_p50_ms"] == pytest.approx(aggregated["50%"])
    assert row["locust_p99_ms"] == pytest.approx(aggregated["99%"])


def test_broken_raw_files_leave_figures_empty(run: FakeRun) -> None:
    cell_id = FakeRun.cell_id("fastapi-uvicorn", 10)
    raw = run.run_dir / schema.RAW_DIR / cell_id
    doc = json.loads((raw / schema.LATENCY_FILE).read_text())
    doc["histogram"] = "not-a-histogram"
    (raw / schema.LATENCY_FILE).write_text(json.dumps(doc))
    (raw / schema.RESOURCES_FILE).write_text("")
    (raw / "locust_stats.csv").write_text("garbage\n\x00\n")
    other = run.run_dir / schema.RAW_DIR / FakeRun.cell_id("fastapi-uvicorn", 100)
    (other / schema.LATENCY_FILE).write_text("{truncated")
    summary = build_summary(run.run_dir).set_index("cell_id")
    row = summary.loc[cell_id]
    assert row["rps"] == pytest.approx(195.0)  # counts survive a bad histogram
    assert pd.isna(row["p50_ms"]) and pd.isna(row["server_cpu_pct"])
    assert pd.isna(row["locust_rps"])
    assert pd.isna(summary.loc[other.name, "rps"])


def test_write_summary_is_atomic_and_round_trips(run: FakeRun) -> None:
    path = write_summary(run.run_dir)
    assert path == summary_path(run.run_dir) and path.is_file()
    assert [p.name for p in run.run_dir.iterdir() if p.name.endswith(".tmp")] == []
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header) == schema.SUMMARY_COLUMNS
    loaded = load(run.run_dir)
    pd.testing.assert_frame_equal(loaded.summary, build_summary(run.run_dir))


def test_load_builds_the_summary_when_there_is_no_csv(run: FakeRun) -> None:
    results = load(run.run_dir)
    assert not summary_path(run.run_dir).exists()
    assert len(results.summary) == len(results.manifest["cells"])
    assert results.run_dir == run.run_dir
    assert results.target_names == ["fastapi-uvicorn", "flask-gunicorn-sync"]


def test_load_without_manifest_names_the_path(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    with pytest.raises(ValueError, match=re.escape(str(folder))):
        load(folder)


def test_per_second(run: FakeRun) -> None:
    cell_id = FakeRun.cell_id("flask-gunicorn-sync", 100)
    frame = per_second(run.run_dir, cell_id)
    assert list(frame.columns) == ["second", "successes", "failures"]
    assert len(frame) == DURATION_S
    assert int(frame["failures"].sum()) == THROUGHPUT[("flask-gunicorn-sync", 100)][1]
    missing = per_second(run.run_dir, FakeRun.cell_id(*FAILED_CELL))
    assert missing.empty and list(missing.columns) == ["second", "successes", "failures"]
    assert not math.isnan(float(frame["successes"].iloc[0]))
