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
    BUSY_GENERATOR,
    CALIBRATION,
    DURATION_S,
    ERRORS,
    FAILED_CELL,
    FAILED_TARGET,
    GENERATOR_CPU_MEAN,
    NEAR_CEILING,
    SERVER_CPU_MEAN,
    SERVER_RSS_PEAK,
    STALL_AT_S,
    STALL_FOR_S,
    THROUGHPUT,
    TRIAL_RPS,
    FakeRun,
    encode,
    make_run,
    measure_cell_id,
)

from harness import schema
from harness.histogram import latency_stats
from harness.results.flags import (
    CEILING_FRACTION,
    ERROR_RATE_LIMIT,
    GENERATOR_CPU_LIMIT_PCT,
    LATE_STARTS_LIMIT,
    cell_flags,
)
from harness.results.folder import load, per_second, summary_path
from harness.results.roofline import CellLoad, roofline
from harness.results.summary import build_summary, write_summary
from harness.results.trials import UNSTABLE_CV, mean_ci, t95

HDR_PRECISION = 1e-3  # 3 significant digits


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path)


def nearest_rank(values: np.ndarray, percentile: float) -> float:
    """The nearest-rank percentile (the ceil(p/100 x n)-th smallest), on the raw values."""
    ordered = np.sort(values)
    rank = max(math.ceil(percentile * len(ordered) / 100 - 1e-9), 1)
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
    cell = CellLoad(load_model, users, rate, service_time_ms=service_ms, slots=slots)
    got = roofline(cell).bound_rps
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


# ---- measurement you can trust: open load, generator limits, trials, stalls -------------------

ORIGINAL_COLUMNS = (
    "scenario", "target", "interface", "server", "framework", "load_model", "users", "rate",
    "trial", "duration_s", "requests", "failures", "rps", "p50_ms", "p90_ms", "p99_ms",
    "p999_ms", "max_ms", "mean_ms", "server_cpu_pct", "server_rss_mb", "generator_cpu_pct",
    "bound_rps", "efficiency", "generator_bound", "status", "cell_id", "slots",
    "service_time_ms", "error_rate", "locust_rps", "locust_p50_ms", "locust_p99_ms",
)  # fmt: skip
NEW_COLUMNS = (
    "p99_uncorrected_ms", "launched", "late_starts", "dropped", "generator_ceiling_rps", "flags",
    "trials", "rps_median", "rps_ci_low", "rps_ci_high", "rps_cv", "p99_median_ms",
    "p99_ci_low_ms", "p99_ci_high_ms", "unstable",
)  # fmt: skip
T_DF2 = 4.303  # Student's t, two-sided 95%, 2 degrees of freedom


@pytest.fixture
def measured(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path, measurement=True)


def as_bool(value: object) -> bool | None:
    """A "boolean" column's value as a plain bool (pandas may hand out numpy.bool_)."""
    return None if pd.isna(value) else bool(value)


def by_cell(run: FakeRun) -> pd.DataFrame:
    return build_summary(run.run_dir).set_index("cell_id")


@pytest.fixture(scope="module")
def measured_summary(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The summary of a measurement run, built once for the tests that only read it."""
    return by_cell(make_run(tmp_path_factory.mktemp("measured"), measurement=True))


def test_new_columns_are_appended_after_the_old_ones() -> None:
    columns = schema.SUMMARY_COLUMNS
    assert columns[: len(ORIGINAL_COLUMNS)] == ORIGINAL_COLUMNS
    assert columns[len(ORIGINAL_COLUMNS) : len(ORIGINAL_COLUMNS) + len(NEW_COLUMNS)] == NEW_COLUMNS


def test_generator_bound_by_cpu(measured_summary: pd.DataFrame) -> None:
    target, users, _rps, _failures, _cpu = BUSY_GENERATOR
    row = measured_summary.loc[measure_cell_id(target, users)]
    assert row["generator_cpu_pct"] == pytest.approx(96.0)
    assert as_bool(row["generator_bound"]) is True
    assert row["flags"] == "generator CPU 96% >= 90%"


def test_generator_bound_by_the_calibrated_ceiling(measured_summary: pd.DataFrame) -> None:
    target, users, _rps, _failures, _cpu = NEAR_CEILING
    row = measured_summary.loc[measure_cell_id(target, users)]
    assert row["generator_ceiling_rps"] == pytest.approx(CALIBRATION["rps"])
    assert row["generator_cpu_pct"] == pytest.approx(GENERATOR_CPU_MEAN)  # CPU alone is fine
    assert as_bool(row["generator_bound"]) is True
    assert row["flags"] == "rps 2950 >= 85% of generator ceiling 3100"


def test_generator_bound_by_late_starts_and_drops(measured_summary: pd.DataFrame) -> None:
    row = measured_summary.loc[measure_cell_id("fastapi-uvicorn", rate=400.0)]
    assert (row["launched"], row["late_starts"], row["dropped"]) == (4000, 72, 5)
    assert as_bool(row["generator_bound"]) is True
    assert row["flags"] == "1.8% of starts late; 5 arrivals dropped"


def test_error_rate_is_flagged_but_not_generator_bound(measured_summary: pd.DataFrame) -> None:
    target, users, _rps, failures, _cpu = ERRORS
    row = measured_summary.loc[measure_cell_id(target, users)]
    assert row["error_rate"] == pytest.approx(failures / 800)
    assert as_bool(row["generator_bound"]) is False
    assert row["flags"] == "error rate 10% > 5%"


def test_trusted_cells_have_no_flags(measured_summary: pd.DataFrame) -> None:
    summary = measured_summary
    for cell_id in (
        measure_cell_id("fastapi-uvicorn", 10, trial=2),
        measure_cell_id("fastapi-uvicorn", rate=50.0),
        FakeRun.cell_id("flask-gunicorn-sync", 100),  # 5 failures of 775: under 5%
    ):
        assert as_bool(summary.loc[cell_id, "generator_bound"]) is False, cell_id
        assert pd.isna(summary.loc[cell_id, "flags"]), cell_id
    for cell_id in (FakeRun.cell_id(*FAILED_CELL), measure_cell_id(FAILED_TARGET, 10)):
        assert pd.isna(summary.loc[cell_id, "generator_bound"]), cell_id  # never ran


def test_without_calibration_the_ceiling_is_not_used(measured: FakeRun) -> None:
    path = measured.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["calibration"] = None
    path.write_text(json.dumps(manifest))
    summary = by_cell(measured)
    assert summary["generator_ceiling_rps"].isna().all()
    row = summary.loc[measure_cell_id(NEAR_CEILING[0], NEAR_CEILING[1])]
    assert as_bool(row["generator_bound"]) is False and pd.isna(row["flags"])
    busy = summary.loc[measure_cell_id(BUSY_GENERATOR[0], BUSY_GENERATOR[1])]
    assert as_bool(busy["generator_bound"]) is True  # the CPU rule does not need a calibration


@pytest.mark.parametrize(
    ("figures", "bound", "flags"),
    [
        ({"rps": 100.0, "generator_cpu_pct": 89.9}, False, []),
        ({"rps": 100.0, "generator_cpu_pct": 90.0}, True, ["generator CPU 90% >= 90%"]),
        ({"rps": 849.9, "generator_ceiling_rps": 1000.0}, False, []),
        (
            {"rps": 850.0, "generator_ceiling_rps": 1000.0},
            True,
            ["rps 850 >= 85% of generator ceiling 1000"],
        ),
        ({"rps": 10.0, "launched": 1000, "late_starts": 10, "dropped": 0}, False, []),
        (
            {"rps": 10.0, "launched": 1000, "late_starts": 11, "dropped": 0},
            True,
            ["1.1% of starts late"],
        ),
        (
            {"rps": 10.0, "launched": 1000, "late_starts": 0, "dropped": 1},
            True,
            ["1 arrivals dropped"],
        ),
        ({"rps": 10.0, "error_rate": 0.05}, False, []),
        ({"rps": 10.0, "error_rate": 0.07}, False, ["error rate 7% > 5%"]),
        ({}, None, []),
    ],
)
def test_flag_thresholds(figures: dict[str, float], bound: bool | None, flags: list[str]) -> None:
    assert cell_flags(figures) == (bound, flags)


def test_thresholds_are_module_constants() -> None:
    assert (GENERATOR_CPU_LIMIT_PCT, CEILING_FRACTION) == (90.0, 0.85)
    assert (LATE_STARTS_LIMIT, ERROR_RATE_LIMIT, UNSTABLE_CV) == (0.01, 0.05, 0.10)
    assert (t95(1), t95(2), t95(30), t95(31), t95(500)) == (12.706, 4.303, 2.042, 1.96, 1.96)


def test_open_cell_corrected_and_uncorrected_p99(measured: FakeRun) -> None:
    summary = by_cell(measured)
    cell_id = measure_cell_id("flask-gunicorn-sync", rate=50.0)
    row = summary.loc[cell_id]
    raw = json.loads(
        (measured.run_dir / schema.RAW_DIR / cell_id / schema.LATENCY_FILE).read_text()
    )
    uncorrected = latency_stats(raw["histogram_uncorrected"])
    corrected = measured.latencies_us[cell_id]
    assert row["p99_ms"] == pytest.approx(nearest_rank(corrected, 99) / 1000, rel=HDR_PRECISION)
    assert row["p99_uncorrected_ms"] == pytest.approx(uncorrected.p99_ms)
    assert row["p99_ms"] > 10 * row["p99_uncorrected_ms"]  # the stall shows only when corrected
    assert row["launched"] == 500 and row["late_starts"] == 2 and row["dropped"] == 0
    assert row["rps"] == pytest.approx(len(corrected) / DURATION_S)
    assert row["load_model"] == "open" and row["rate"] == 50.0 and row["users"] == 1
    closed = summary.loc[measure_cell_id("fastapi-uvicorn", 10)]
    for column in ("p99_uncorrected_ms", "launched", "late_starts", "dropped"):
        assert pd.isna(closed[column]), column


def test_stall_is_recorded_relative_to_the_window(measured_summary: pd.DataFrame) -> None:
    summary = measured_summary
    stalled = summary[summary["stall_for_s"].notna()]
    assert list(stalled.index) == [measure_cell_id("flask-gunicorn-sync", rate=50.0)]
    assert stalled["stall_at_s"].iloc[0] == pytest.approx(STALL_AT_S)
    assert stalled["stall_for_s"].iloc[0] == pytest.approx(STALL_FOR_S)


def hand_stats(values: list[float]) -> tuple[float, float, float, float]:
    """Median, CI low, CI high and CV of 3 values, computed the long way with t = 4.303."""
    assert len(values) == 3
    ordered = sorted(values)
    mean = sum(values) / 3
    stdev = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = T_DF2 * stdev / math.sqrt(3)
    return ordered[1], mean - half, mean + half, stdev / mean


@pytest.mark.parametrize(
    ("target", "unstable"), [("fastapi-uvicorn", False), ("flask-gunicorn-sync", True)]
)
def test_trials_median_ci_cv(measured_summary: pd.DataFrame, target: str, unstable: bool) -> None:
    summary = measured_summary
    ids = [measure_cell_id(target, 10, trial=t) for t in (1, 2, 3)]
    rows = summary.loc[ids]
    rps = list(TRIAL_RPS[(target, 10)])
    assert rows["rps"].tolist() == pytest.approx(rps)
    median, low, high, cv = hand_stats(rps)
    # By hand: fastapi 190/200/210 -> 200 +- 24.84, CV 5%; flask 60/70/80 -> 70 +- 24.84, CV 14%.
    assert high - median == pytest.approx(24.843, abs=1e-3)
    p99_median, p99_low, p99_high, _ = hand_stats(rows["p99_ms"].tolist())
    for _, row in rows.iterrows():  # every row of the group carries the group figures
        assert row["trials"] == 3
        assert row["rps_median"] == pytest.approx(median)
        assert row["rps_ci_low"] == pytest.approx(low)
        assert row["rps_ci_high"] == pytest.approx(high)
        assert row["rps_cv"] == pytest.approx(cv)
        assert row["p99_median_ms"] == pytest.approx(p99_median)
        assert row["p99_ci_low_ms"] == pytest.approx(p99_low)
        assert row["p99_ci_high_ms"] == pytest.approx(p99_high)
        assert as_bool(row["unstable"]) is unstable
    assert (cv > 0.10) is unstable


def test_one_trial_has_a_median_but_no_interval(measured_summary: pd.DataFrame) -> None:
    row = measured_summary.loc[measure_cell_id(BUSY_GENERATOR[0], BUSY_GENERATOR[1])]
    assert row["trials"] == 1
    assert row["rps_median"] == pytest.approx(row["rps"])
    assert row["p99_median_ms"] == pytest.approx(row["p99_ms"])
    for column in ("rps_ci_low", "rps_ci_high", "rps_cv", "p99_ci_low_ms", "p99_ci_high_ms"):
        assert pd.isna(row[column]), column
    assert pd.isna(row["unstable"])


def test_groups_without_an_ok_trial(measured_summary: pd.DataFrame) -> None:
    summary = measured_summary
    skipped = summary.loc[[measure_cell_id(FAILED_TARGET, 10, trial=t) for t in (1, 2, 3)]]
    assert skipped["status"].tolist() == [schema.STATUS_SKIPPED] * 3
    assert skipped["trials"].tolist() == [0, 0, 0]
    assert skipped["rps_median"].isna().all() and skipped["unstable"].isna().all()
    failed = summary.loc[FakeRun.cell_id(*FAILED_CELL)]
    assert failed["trials"] == 0 and pd.isna(failed["rps_median"])


def test_failed_trial_does_not_count(measured: FakeRun) -> None:
    path = measured.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    third = measure_cell_id("flask-gunicorn-sync", 10, trial=3)
    for cell in manifest["cells"]:
        if cell["cell_id"] == third:
            cell["status"] = schema.STATUS_FAILED
    path.write_text(json.dumps(manifest))
    rows = by_cell(measured).loc[
        [measure_cell_id("flask-gunicorn-sync", 10, trial=t) for t in (1, 2, 3)]
    ]
    assert rows["trials"].tolist() == [2, 2, 2]
    mean, stdev = 65.0, math.sqrt(50.0)  # 60 and 70
    half = 12.706 * stdev / math.sqrt(2)
    assert rows["rps_median"].tolist() == pytest.approx([65.0] * 3)
    assert rows["rps_ci_low"].tolist() == pytest.approx([mean - half] * 3)
    assert rows["rps_ci_high"].tolist() == pytest.approx([mean + half] * 3)


def test_confidence_interval_floors_at_zero() -> None:
    low, high = mean_ci([1.0, 100.0])  # 50.5 +- 12.706 * 70 / sqrt(2): the low end is < 0
    assert low == 0.0
    assert high == pytest.approx(50.5 + 12.706 * math.sqrt(4900.5) / math.sqrt(2))
    assert mean_ci([5.0]) is None


def test_summary_with_new_columns_round_trips(measured: FakeRun) -> None:
    write_summary(measured.run_dir)
    loaded = load(measured.run_dir).summary
    pd.testing.assert_frame_equal(loaded, build_summary(measured.run_dir))
    dtypes = loaded.dtypes.astype(str)
    for column in ("launched", "late_starts", "dropped", "trials"):
        assert dtypes[column] == "Int64", column
    assert dtypes["unstable"] == "boolean" and dtypes["generator_bound"] == "boolean"
    assert dtypes["flags"] == "string"
    for column in ("p99_uncorrected_ms", "generator_ceiling_rps", "rps_ci_low", "rps_cv"):
        assert dtypes[column] == "float64", column


def test_older_summary_csv_gets_the_new_columns(measured: FakeRun) -> None:
    path = write_summary(measured.run_dir)
    old = pd.read_csv(path)[list(ORIGINAL_COLUMNS)]
    old.to_csv(path, index=False)
    loaded = load(measured.run_dir).summary
    assert tuple(loaded.columns) == schema.SUMMARY_COLUMNS
    assert loaded["trials"].notna().all()  # rebuilt from raw/ (in memory)
    assert pd.read_csv(path).columns.tolist() == list(ORIGINAL_COLUMNS)  # the file is untouched
    # Without raw files there is nothing to rebuild from: the new columns load empty.
    for child in (measured.run_dir / schema.RAW_DIR).iterdir():
        for file in child.iterdir():
            file.unlink()
        child.rmdir()
    (measured.run_dir / schema.RAW_DIR).rmdir()
    bare = load(measured.run_dir).summary
    assert tuple(bare.columns) == schema.SUMMARY_COLUMNS
    assert bare["trials"].isna().all() and bare["rps"].notna().any()
