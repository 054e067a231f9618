"""Keep-alive, measured: TCP connections the generator opened per request, per cell.

latency.json ``tcp_connects`` (``harness.loadgen.recorder``: connections the locust process
started in the measurement window) becomes summary.csv ``connections_per_request`` (divided by
the window's requests, successes and failures). A sync gunicorn worker closes the connection
after every response, so it is about 1 there; uvicorn keeps connections open: about 0.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from analysis_fixtures import DURATION_S, THROUGHPUT, FakeRun, make_run
from conftest import run_harness as harness

from harness import schema
from harness.results.summary import build_summary, write_summary

COLUMN = "connections_per_request"


def test_the_column_was_appended_after_other_cpu_pct() -> None:
    columns = list(schema.SUMMARY_COLUMNS)
    assert columns.index(COLUMN) == columns.index("other_cpu_pct") + 1


def set_latency_key(run: FakeRun, cell_id: str, key: str, value: object) -> None:
    path = run.run_dir / schema.RAW_DIR / cell_id / schema.LATENCY_FILE
    doc = json.loads(path.read_text())
    if value is ...:
        doc.pop(key, None)
    else:
        doc[key] = value
    path.write_text(json.dumps(doc))


def test_connections_per_request_from_latency_json(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    sync_10 = FakeRun.cell_id("flask-gunicorn-sync", 10)
    sync_100 = FakeRun.cell_id("flask-gunicorn-sync", 100)
    asgi_10 = FakeRun.cell_id("fastapi-uvicorn", 10)
    asgi_100 = FakeRun.cell_id("fastapi-uvicorn", 100)
    rps, failures = THROUGHPUT[("flask-gunicorn-sync", 100)]
    requests_100 = int(rps * DURATION_S) + failures  # failures count: they used a connection
    set_latency_key(run, sync_10, "tcp_connects", int(78.0 * DURATION_S))  # one per request
    set_latency_key(run, sync_100, "tcp_connects", requests_100 // 2)
    set_latency_key(run, asgi_10, "tcp_connects", 0)  # kept alive
    set_latency_key(run, asgi_100, "tcp_connects", None)  # not counted: unknown
    summary = build_summary(run.run_dir).set_index("cell_id")
    assert summary[COLUMN].dtype == "float64"
    assert summary.loc[sync_10, COLUMN] == pytest.approx(1.0)
    assert summary.loc[sync_100, COLUMN] == pytest.approx((requests_100 // 2) / requests_100)
    assert summary.loc[asgi_10, COLUMN] == 0.0
    assert summary[COLUMN].isna()[asgi_100]
    failed = summary[summary["status"] == schema.STATUS_FAILED]
    assert len(failed) == 1 and failed[COLUMN].isna().all()  # no raw files: empty
    # Written and read back: the column is there, empty where unknown.
    with write_summary(run.run_dir).open(newline="") as handle:
        rows = {r["cell_id"]: r for r in csv.DictReader(handle)}
    assert float(rows[sync_10][COLUMN]) == 1.0 and rows[asgi_100][COLUMN] == ""


def test_runs_from_before_the_count_leave_it_empty(tmp_path: Path) -> None:
    run = make_run(tmp_path)  # the fixture's latency.json has no tcp_connects
    summary = build_summary(run.run_dir)
    assert summary[COLUMN].isna().all()


def test_no_requests_no_ratio(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    cell_id = FakeRun.cell_id("fastapi-uvicorn", 10)
    path = run.run_dir / schema.RAW_DIR / cell_id / schema.LATENCY_FILE
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "successes": 0, "failures": 0, "tcp_connects": 3}))
    summary = build_summary(run.run_dir).set_index("cell_id")
    assert summary[COLUMN].isna()[cell_id]


@pytest.mark.e2e
def test_sync_worker_opens_a_connection_per_request_uvicorn_keeps_them(tmp_path: Path) -> None:
    run_dir = tmp_path / "keepalive"
    done = harness(
        "run", "--scenarios", "health", "--targets", "flask-gunicorn-sync,fastapi-uvicorn",
        "--users", "4", "--duration", "1", "--warmup", "0.3", "--no-calibrate", "--no-verify",
        "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with (run_dir / schema.SUMMARY_FILE).open(newline="") as handle:
        rows = {r["target"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"flask-gunicorn-sync", "fastapi-uvicorn"}
    for row in rows.values():
        assert row["status"] == schema.STATUS_OK and int(row["requests"]) > 50, row
    # Counted in the locust process itself: tests running beside this one do not add to it.
    assert float(rows["flask-gunicorn-sync"][COLUMN]) > 0.8, rows["flask-gunicorn-sync"]
    assert float(rows["flask-gunicorn-sync"][COLUMN]) < 1.2, rows["flask-gunicorn-sync"]
    assert float(rows["fastapi-uvicorn"][COLUMN]) < 0.05, rows["fastapi-uvicorn"]
    for row in rows.values():
        latency = json.loads(
            (run_dir / schema.RAW_DIR / row["cell_id"] / schema.LATENCY_FILE).read_text()
        )
        assert isinstance(latency["tcp_connects"], int)
        if Path("/proc/net/snmp").is_file():  # the machine's count holds at least ours
            # (give or take a connect at the window's edges: the two are read a moment apart)
            assert latency["tcp_active_opens"] >= latency["tcp_connects"] - 2
