"""The protocol layer end to end: real servers over HTTP/2 (h2c and h2 over TLS with ALPN),
TLS with the run's own certificate, and a new connection per request, run by
``python -m harness run`` as a user runs it.

Two shared runs: the cheap route four ways (keep-alive, TLS, a new connection per request,
both) on a WSGI and an ASGI stack, and the ``h2`` scenario on an h2c and an h2 (TLS) target
at 10 and 50 users (issue 16's acceptance)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SharedRun
from conftest import run_harness as harness

from harness import schema
from harness.histogram import latency_stats

STACKS = ("flask-gunicorn-gthread", "fastapi-uvicorn")
H2_TARGETS = ("fastapi-hypercorn-h2c", "fastapi-granian-h2")


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / schema.SUMMARY_FILE).open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def reuse_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    run_dir = tmp_path_factory.mktemp("reuse") / "run"
    done = harness(
        "run", "--scenarios", "health,newconn,tls,newconn_tls", "--targets", ",".join(STACKS),
        "--users", "10", "--duration", "2", "--warmup", "0.5", "--no-calibrate",
        "--out", str(run_dir),
    )  # fmt: skip
    yield SharedRun(run_dir, done)


@pytest.fixture(scope="module")
def h2_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    run_dir = tmp_path_factory.mktemp("h2") / "run"
    done = harness(
        "run", "--scenarios", "h2", "--targets", ",".join(H2_TARGETS), "--users", "10,50",
        "--duration", "2", "--warmup", "0.5", "--latency-log", "--out", str(run_dir),
    )  # fmt: skip
    yield SharedRun(run_dir, done)


@pytest.mark.e2e
@pytest.mark.solo
def test_a_new_connection_per_request_costs_throughput(reuse_run: SharedRun) -> None:
    """newconn on a WSGI and an ASGI stack: below the same targets' health (the same route
    with keep-alive), one connection opened per request; keep-alive opens about none."""
    assert reuse_run.done.returncode == 0, reuse_run.done.stderr
    rows = {(r["scenario"], r["target"]): r for r in read_summary(reuse_run.run_dir)}
    assert len(rows) == 8
    for row in rows.values():
        assert row["status"] == schema.STATUS_OK and int(row["failures"]) == 0, row
        assert int(row["requests"]) > 100, row
    for target in STACKS:
        health, newconn = rows[("health", target)], rows[("newconn", target)]
        assert float(newconn["rps"]) < float(health["rps"]), (target, newconn, health)
        assert 0.95 <= float(newconn["connections_per_request"]) <= 1.05, newconn
        assert float(health["connections_per_request"]) < 0.05, health
        assert newconn["connection"] == "close" and health["connection"] == "keep-alive"
        tls, new_tls = rows[("tls", target)], rows[("newconn_tls", target)]
        assert tls["tls"] == "True" and new_tls["tls"] == "True" and health["tls"] == "False"
        assert float(tls["connections_per_request"]) < 0.05, tls
        assert 0.95 <= float(new_tls["connections_per_request"]) <= 1.05, new_tls
        # A TLS handshake per request costs more than a TCP one: below newconn too.
        assert float(new_tls["rps"]) < float(newconn["rps"]), (target, new_tls, newconn)


@pytest.mark.e2e
@pytest.mark.solo  # reads the solo test's run: in the parallel phase it would be made twice
def test_tls_cells_used_the_runs_own_certificate(reuse_run: SharedRun) -> None:
    assert reuse_run.done.returncode == 0, reuse_run.done.stderr
    manifest = json.loads((reuse_run.run_dir / schema.MANIFEST_FILE).read_text())
    tls = manifest["tls"]
    assert tls["ca_file"] == "raw/tls/ca.pem"  # inside the run folder, which may be moved
    ca = (reuse_run.run_dir / tls["ca_file"]).read_text()
    assert "BEGIN CERTIFICATE" in ca
    for cell in manifest["cells"]:
        go = json.loads((reuse_run.run_dir / "raw" / cell["cell_id"] / "go.json").read_text())
        served_tls = cell["scenario"] in ("tls", "newconn_tls")
        assert go["host"].startswith("https://" if served_tls else "http://"), go
        assert go["link"]["ca_pem"] == (ca if served_tls else None)
        assert go["link"]["http"] == "1.1"
    assert manifest["verify"]["fastapi-uvicorn"]["passed"] is True


@pytest.mark.e2e
def test_h2_on_h2c_and_tls_targets(h2_run: SharedRun) -> None:
    """Acceptance: h2 on an h2c and an h2-over-TLS target at 10 and 50 users: 0 failures,
    protocol h2, exact percentiles, generator flags computed against the HTTP/2 user's own
    calibrated ceiling."""
    assert h2_run.done.returncode == 0, h2_run.done.stderr
    rows = read_summary(h2_run.run_dir)
    assert sorted((r["target"], r["users"]) for r in rows) == sorted(
        (t, u) for t in H2_TARGETS for u in ("10", "50")
    )
    manifest = json.loads((h2_run.run_dir / schema.MANIFEST_FILE).read_text())
    h2_ceiling = manifest["calibration"]["h2"]["rps"]
    assert manifest["calibration"]["h2"]["http"] == "2"
    assert h2_ceiling > 0
    for row in rows:
        assert row["status"] == schema.STATUS_OK, row
        assert int(row["failures"]) == 0 and int(row["requests"]) > 100, row
        assert row["protocol"] == "h2" and row["client"] == "httpx", row
        assert row["streams"] == "8", row
        assert row["tls"] == str(row["target"] == "fastapi-granian-h2"), row
        assert row["generator_bound"] in ("True", "False"), row
        assert float(row["generator_ceiling_rps"]) == pytest.approx(h2_ceiling), row
        # one connection per user, kept: the streams share it
        assert float(row["connections_per_request"]) < 0.02, row
        # exact: the summary's percentiles are the recorded histogram's, which hold every
        # request of the window (requests.csv, --latency-log) within HDR's 0.1%
        raw = h2_run.run_dir / "raw" / row["cell_id"]
        latency = json.loads((raw / schema.LATENCY_FILE).read_text())
        stats = latency_stats(latency["histogram"], latency["unit"])
        assert float(row["p99_ms"]) == pytest.approx(stats.p99_ms)
        with (raw / schema.REQUEST_LOG).open(newline="") as handle:
            logged = sorted(int(r["latency_us"]) for r in csv.DictReader(handle))
        assert len(logged) == latency["successes"]
        for percentile, figure in ((50, "p50_ms"), (99, "p99_ms")):
            exact_ms = logged[math.ceil(percentile / 100 * len(logged)) - 1] / 1000
            assert float(row[figure]) == pytest.approx(exact_ms, rel=1e-3), (figure, row)
