"""Several load generators: locust master and workers, their records added, never averaged.

Unit tests of the merge (harness.loadgen.merge) and of how a cell judges its workers
(harness.results.summary, harness.results.flags); end-to-end runs with ``--generators 2``
whose merged percentiles are checked against every request each worker logged. The worker
processes themselves: tests/test_generator_workers.py.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_harness

from harness.cli import main
from harness.histogram import decode_histogram, latency_stats
from harness.loadgen.merge import add_histograms, merge_logs, merge_records
from harness.loadgen.recorder import Recorder
from harness.results.flags import cell_flags
from harness.results.summary import _generator_figures
from harness.run.generators import parse_master
from harness.units import UsageError

# --- the merge ---------------------------------------------------------------------------------


def worker_record(
    rng: random.Random, start: float, latencies_ms: list[float], index: int
) -> dict[str, Any]:
    """A worker's record of a 2 s window: one request completing every 1/len s."""
    recorder = Recorder(warmup_s=0.0, duration_s=2.0)
    recorder.log = []
    recorder.open_window(start)
    for i, ms in enumerate(latencies_ms):
        now = start + 2.0 * i / len(latencies_ms)
        failed = "HTTP 500" if rng.random() < 0.02 else None
        recorder.request(now, "GET", "/io", ms, failed)
    record = recorder.to_dict()
    record["worker"] = {"index": index, "hostname": "h", "cpu_pct": 40.0 + index, "cpus": [1]}
    record["log"] = [[t, us] for t, us in recorder.log]
    return record


def test_merged_histograms_hold_every_request_of_every_worker() -> None:
    rng = random.Random(7)
    start = time.time() - 10
    fast = [rng.uniform(1, 5) for _ in range(3000)]
    slow = [rng.uniform(40, 900) for _ in range(1000)]  # one worker saw the slow tail
    records = [worker_record(rng, start, fast, 0), worker_record(rng, start + 0.001, slow, 1)]
    merged = merge_records(records)

    assert merged["successes"] == sum(r["successes"] for r in records)
    assert merged["failures"] == sum(r["failures"] for r in records)
    assert merged["failures_by_kind"] == {"HTTP 500": merged["failures"]}
    assert merged["complete"] is True
    assert merged["window_start"] == start and merged["window_end"] == start + 2.001
    # Percentiles of the merged histogram are those of all requests, not a mean of workers'.
    everything = sorted(r[1] for r in merge_logs(r.pop("log") for r in records))
    assert len(everything) == merged["successes"]
    stats = latency_stats(merged["histogram"])
    for percentile, value_ms in ((50, stats.p50_ms), (99, stats.p99_ms), (99.9, stats.p999_ms)):
        exact_ms = everything[math.ceil(percentile / 100 * len(everything)) - 1] / 1000
        assert value_ms == pytest.approx(exact_ms, rel=1e-3)
    averaged = sum(latency_stats(r["histogram"]).p99_ms or 0 for r in records) / 2
    assert stats.p99_ms != pytest.approx(averaged, rel=0.05)
    # Per name and per second are sums too, the mean weighted by successes.
    assert merged["by_name"]["GET /io"]["successes"] == merged["successes"]
    assert sum(row[1] for row in merged["per_second"]) == merged["successes"]
    total_ms = sum(row[1] * row[3] for row in merged["per_second"] if row[1])
    assert total_ms / merged["successes"] == pytest.approx(stats.mean_ms, rel=1e-2)
    assert [w["index"] for w in merged["workers"]] == [0, 1]
    assert [w["successes"] for w in merged["workers"]] == [r["successes"] for r in records]


def test_an_incomplete_worker_makes_the_merged_record_incomplete() -> None:
    rng = random.Random(1)
    records = [worker_record(rng, time.time() - 10, [5.0] * 10, i) for i in range(2)]
    records[1]["complete"] = False
    assert merge_records(records)["complete"] is False
    with pytest.raises(ValueError):
        merge_records([])


def test_open_load_figures_are_summed_and_lateness_added() -> None:
    rng = random.Random(2)
    records = [worker_record(rng, time.time() - 10, [5.0] * 10, i) for i in range(2)]
    lateness = []
    for i, record in enumerate(records):
        recorder = Recorder(0.0, 1.0)
        recorder.open_window(time.time() - 5)
        for ms in ([1.0] * 99 + [30.0]) if i else [0.5] * 100:
            recorder.record_lateness(recorder.window_start or 0.0, ms / 1000)
        lateness.append(recorder.open_figures())
        record["open"] = {
            "rate": 100.0, "arrivals": "poisson", "offered": 100.0, "launched": 120,
            "launched_in_window": 100, "dropped": 0, "in_flight_at_end": 3,
            "late_scheduler": 0, **lateness[-1],
        }  # fmt: skip
    merged = merge_records(records)["open"]
    assert merged["rate"] == 200.0 and merged["offered"] == 200.0
    assert merged["launched_in_window"] == 200 and merged["in_flight_at_end"] == 6
    assert merged["late"] == 1  # the one 30 ms start
    assert merged["max_lateness_ms"] == 30.0
    histogram = decode_histogram(merged["lateness_histogram"])
    assert histogram.get_total_count() == 200
    assert merged["lateness_p99_ms"] == pytest.approx(1.0, rel=1e-2)


def test_adding_no_histogram_gives_an_empty_one() -> None:
    assert decode_histogram(add_histograms([None, ""])).get_total_count() == 0


# --- judging the workers -----------------------------------------------------------------------


def test_one_plain_process_is_one_generator_on_one_core() -> None:
    assert _generator_figures({}) == {"generators": 1, "generator_budget_pct": 100.0}


def test_workers_budget_is_one_core_each_at_most_the_cores_they_share() -> None:
    def worker(host: str, cpus: list[int], cpu: float) -> dict[str, Any]:
        return {"hostname": host, "cpus": cpus, "cpu_pct": cpu}

    two_on_one_core = {"workers": [worker("a", [1], 48.0), worker("a", [1], 47.0)]}
    figures = _generator_figures(two_on_one_core)
    assert figures["generators"] == 2 and figures["generator_budget_pct"] == 100.0
    assert figures["generator_cpu_pct"] == 95.0 and figures["worker_cpu_max_pct"] == 48.0
    spread = {
        "workers": [worker("a", [0, 1, 2, 3], 50.0), worker("a", [0, 1, 2, 3], 50.0),
                    worker("b", [0, 1], 95.0)]
    }  # fmt: skip
    assert _generator_figures(spread)["generator_budget_pct"] == 300.0


def test_a_cell_is_generator_bound_when_any_worker_is_busy() -> None:
    row = {"rps": 1000.0, "generator_cpu_pct": 130.0, "generator_budget_pct": 200.0,
           "worker_cpu_max_pct": 93.0, "generators": 2}  # fmt: skip
    bound, flags = cell_flags(row)
    assert bound is True
    assert any("busiest of 2 workers at 93%" in f for f in flags)
    assert not any(f.startswith("generator CPU") for f in flags)  # 130 < 90% of 2 cores
    row["worker_cpu_max_pct"] = 70.0
    assert cell_flags(row)[0] is False
    row["generator_cpu_pct"] = 185.0
    bound, flags = cell_flags(row)
    assert bound is True and any("generator CPU 185% >= 180% of 2 cores" in f for f in flags)


# --- options -----------------------------------------------------------------------------------


def test_master_address_parsing() -> None:
    assert parse_master("10.0.0.5") == ("10.0.0.5", 5557)
    assert parse_master("gen-host:6000") == ("gen-host", 6000)
    for bad in (":6000", "host:x", "host:70000"):
        with pytest.raises(UsageError, match="--master"):
            parse_master(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generators", "0"], "--generators"),
        (["--generators", "two"], "--generators"),
        (["--generators-external", "-1"], "--generators-external"),
        (["--master-bind", "0.0.0.0:6000"], "--master-bind goes with --generators-external"),
        (["--generators-external", "1", "--master-bind", "h:port"], "--master-bind"),
    ],
)
def test_bad_generator_options_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], restore_signals: None
) -> None:
    assert main(["run", "--scenarios", "io", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_worker_needs_a_master_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--master", "host:nope"]) == 2
    assert "--master" in capsys.readouterr().err


# --- end to end --------------------------------------------------------------------------------


def exact_percentile_ms(latencies_us: list[int], percentile: float) -> float:
    ordered = sorted(latencies_us)
    return ordered[math.ceil(percentile / 100 * len(ordered)) - 1] / 1000


@pytest.fixture(scope="module")
def two_generator_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """health and io at 20 users, closed, and io at 200 requests/s, open: two generators."""
    out = tmp_path_factory.mktemp("generators") / "run"
    done = run_harness(
        "run", "--scenarios", "health,io", "--targets", "fastapi-uvicorn", "--users", "20",
        "--duration", "2", "--warmup", "1", "--no-calibrate", "--no-verify",
        "--generators", "2", "--latency-log", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    done = run_harness(
        "run", "--scenarios", "io", "--targets", "fastapi-uvicorn", "--rates", "200",
        "--duration", "2", "--warmup", "1", "--no-calibrate", "--no-verify",
        "--generators", "2", "--latency-log", "--out", str(out.parent / "open"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    return out


def summary_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.e2e
@pytest.mark.parametrize(
    "cell_id", ["health__fastapi-uvicorn__u20__t1", "io__fastapi-uvicorn__u20__t1"]
)
def test_merged_percentiles_equal_every_logged_request(
    two_generator_run: Path, cell_id: str
) -> None:
    cell = two_generator_run / "raw" / cell_id
    latency = json.loads((cell / "latency.json").read_text())
    with open(cell / "requests.csv", newline="") as handle:
        logged = [int(row["latency_us"]) for row in csv.DictReader(handle)]
    workers = latency["workers"]
    assert len(workers) == 2 and {w["index"] for w in workers} == {0, 1}
    assert all(w["successes"] > 0 and w["cpu_pct"] is not None for w in workers)
    assert sum(w["users"] for w in workers) == 20
    assert latency["successes"] == len(logged) == sum(w["successes"] for w in workers)
    stats = latency_stats(latency["histogram"])
    for percentile, merged_ms in ((50, stats.p50_ms), (99, stats.p99_ms), (99.9, stats.p999_ms)):
        assert merged_ms == pytest.approx(exact_percentile_ms(logged, percentile), rel=1e-3)
    row = next(r for r in summary_rows(two_generator_run) if r["cell_id"] == cell_id)
    assert int(row["requests"]) == sum(w["successes"] + w["failures"] for w in workers)
    assert row["generators"] == "2" and float(row["generator_budget_pct"]) > 0
    assert float(row["worker_cpu_max_pct"]) == max(w["cpu_pct"] for w in workers)
    assert float(row["p99_ms"]) == pytest.approx(stats.p99_ms)
    assert row["locust_rps"]  # locust's own (rounded) figures stay beside them
    manifest = json.loads((two_generator_run / "manifest.json").read_text())
    assert manifest["generators"]["local"] == 2
    report = (two_generator_run / "report.md").read_text()
    assert "**Load generators:** 2 locust workers (2 on this machine" in report


@pytest.mark.e2e
def test_open_load_splits_the_rate_over_the_workers(two_generator_run: Path) -> None:
    run_dir = two_generator_run.parent / "open"
    latency = json.loads(
        (run_dir / "raw" / "io__fastapi-uvicorn__r200__t1" / "latency.json").read_text()
    )
    workers = latency["workers"]
    assert [w["rate"] for w in workers] == [100.0, 100.0]
    assert latency["open"]["rate"] == 200.0 and latency["open"]["offered"] == 400.0
    assert latency["open"]["launched_in_window"] == sum(w["launched_in_window"] for w in workers)
    assert 300 < latency["open"]["launched_in_window"] < 500  # Poisson around 400
    assert latency["successes"] == sum(w["successes"] for w in workers) > 0
    assert summary_rows(run_dir)[0]["generators"] == "2"
