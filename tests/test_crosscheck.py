"""``python -m harness crosscheck``: a run's HTTP/2 cells replayed with h2load, side by side.

The end-to-end tests make a real run of the ``h2`` scenario on granian's h2c row, replay it with
the real h2load against the same target started again, and read ``crosscheck.csv``: both
generators must see the 50 ms wait of ``/io?ms=50`` (10 users x 8 streams stay well below
what one server core does). No throughput ratio is asserted: it depends on the machine. The
refusals run against a folder written here (no server, no h2load run).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROJECT, SharedRun
from conftest import run_harness as harness

from harness import schema
from harness.format import ratio_number
from harness.report.crosscheck import CROSSCHECK_FILE, crosscheck_lines
from harness.run.crosscheck import COLUMNS, NOT_INSTALLED, parse_output, percentile

TARGET = "fastapi-granian-h2c"
CELL = f"h2__{TARGET}__u10__t1"
TWIN = "fastapi-granian"  # its HTTP/1.1 twin: the HTTP/2 user drove it over HTTP/1.1
TWIN_CELL = f"h2__{TWIN}__u10__t1"
# h2load 1.52 counts none of hypercorn's HTTP/1.1 answers ("HTTP/1.1 200 \r\n", no reason
# phrase) as a success: its row must say so, not show a requests/s of failures
UNREAD = "fastapi-hypercorn"
UNREAD_CELL = f"h2__{UNREAD}__u10__t1"


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / CROSSCHECK_FILE).open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def h2_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    """One real run of the h2 scenario, then ``crosscheck`` on it (its exit in ``done``)."""
    run_dir = tmp_path_factory.mktemp("crosscheck") / "run"
    ran = harness(
        "run", "--scenarios", "h2", "--targets", f"{TARGET},{TWIN},{UNREAD}", "--users", "10",
        "--duration", "2", "--warmup", "0.5", "--no-calibrate", "--out", str(run_dir),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    yield SharedRun(run_dir, harness("crosscheck", str(run_dir)))


@pytest.mark.e2e
@pytest.mark.solo
def test_h2load_replays_the_h2_cell(h2_run: SharedRun) -> None:
    done = h2_run.done
    assert done.returncode == 1, done.stderr[-3000:]  # one cell could not be replayed
    rows = read_rows(h2_run.run_dir)
    assert [row["cell_id"] for row in rows] == [CELL, TWIN_CELL, UNREAD_CELL]
    unread = rows.pop()
    assert unread["error"].startswith("h2load counted none of its")
    assert int(unread["h2load_failed"]) > 0 and unread["h2load_rps"] == ""
    for row, http in zip(rows, ("2", "1.1"), strict=True):
        assert tuple(row) == COLUMNS
        assert row["error"] == "" and row["http"] == http
        assert (row["users"], row["streams"]) == ("10", "8")
        assert int(row["h2load_failed"]) == 0
        assert float(row["h2load_rps"]) > 0
        assert float(row["h2load_p99_ms"]) >= float(row["h2load_p50_ms"]) > 0
        assert float(row["h2load_cpu_ms_per_request"]) > 0
        assert float(row["gatebench_cpu_ms_per_request"]) > 0
        # /io?ms=50 with 80 requests in flight: the 50 ms wait plus a little, for both
        for generator in ("h2load", "gatebench"):
            assert 45 <= float(row[f"{generator}_p50_ms"]) <= 150, (generator, row)
    assert (rows[0]["target"], rows[1]["target"]) == (TARGET, TWIN)
    # h2load spoke HTTP/1.1 to the twin with a connection per stream (its printed output)
    twin_output = h2_run.run_dir / schema.RAW_DIR / "crosscheck" / f"{TWIN_CELL}.h2load.txt"
    assert "Application protocol: http/1.1" in twin_output.read_text()
    assert CELL in done.stdout  # the printed table
    crosscheck = h2_run.run_dir / schema.RAW_DIR / "crosscheck"
    assert (crosscheck / f"{CELL}.requests.tsv").stat().st_size > 0  # h2load's request log
    # every figure traced: gatebench's from summary.csv, h2load's from its own request log
    with (h2_run.run_dir / schema.SUMMARY_FILE).open(newline="") as handle:
        summary = {r["cell_id"]: r for r in csv.DictReader(handle)}
    for row in rows:
        cell = summary[row["cell_id"]]
        assert float(row["gatebench_rps"]) == pytest.approx(float(cell["rps"]), rel=1e-5)
        cpu_ms = float(cell["generator_cpu_pct"]) / 100 / float(cell["rps"]) * 1000
        assert float(row["gatebench_cpu_ms_per_request"]) == pytest.approx(cpu_ms, rel=1e-4)
        ratio = float(row["h2load_rps"]) / float(row["gatebench_rps"])
        assert float(row["rps_ratio"]) == pytest.approx(ratio, rel=1e-4)
        log = (crosscheck / f"{row['cell_id']}.requests.tsv").read_text().splitlines()
        times = sorted(
            int(f.split("\t")[2]) / 1000 for f in log if 200 <= int(f.split("\t")[1]) < 400
        )
        for fraction, column in ((0.5, "h2load_p50_ms"), (0.99, "h2load_p99_ms")):
            exact = times[math.ceil(fraction * len(times)) - 1]  # nearest rank
            assert float(row[column]) == pytest.approx(exact, rel=1e-4), column
    cpu = sorted(
        float(r["gatebench_cpu_ms_per_request"]) / float(r["h2load_cpu_ms_per_request"])
        for r in rows
    )
    spent = f"{ratio_number(cpu[0])}–{ratio_number(cpu[-1])}"
    assert f"gatebench's generator spent {spent}× the CPU per request of h2load." in (
        crosscheck_lines(h2_run.run_dir)
    )
    lines = crosscheck_lines(h2_run.run_dir)
    assert lines[0] == "### Driver cost: h2load beside gatebench"
    assert any(line.startswith(f"| {TARGET} (HTTP/2), 10 users × 8 streams |") for line in lines)
    assert any(line.startswith(f"| {TWIN} (HTTP/1.1), 10 users × 8 streams |") for line in lines)


@pytest.mark.e2e
@pytest.mark.solo  # reads the solo test's run: in the parallel phase it would be made twice
def test_a_cell_that_cannot_start_gets_an_error_row_and_the_others_go_on(
    h2_run: SharedRun, tmp_path: Path
) -> None:
    """A second cell naming a target gone from the table: its row says why, the real one runs."""
    run_dir = tmp_path / "run"
    shutil.copytree(h2_run.run_dir, run_dir, ignore=shutil.ignore_patterns(CROSSCHECK_FILE))
    gone = CELL.replace("__t1", "__t2")
    shutil.copytree(run_dir / schema.RAW_DIR / CELL, run_dir / schema.RAW_DIR / gone)
    summary = run_dir / schema.SUMMARY_FILE
    with summary.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows.insert(0, {**rows[0], "cell_id": gone, "target": "fastapi-gone-h2c", "trial": "2"})
    with summary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = harness("crosscheck", str(run_dir), "--duration", "1")
    assert done.returncode == 1, done.stderr[-3000:]
    written = {row["cell_id"]: row for row in read_rows(run_dir)}
    assert "no longer in the target table" in written[gone]["error"]
    assert written[gone]["h2load_rps"] == ""
    assert written[CELL]["error"] == "" and float(written[CELL]["h2load_rps"]) > 0
    assert written[TWIN_CELL]["error"] == "" and float(written[TWIN_CELL]["h2load_rps"]) > 0
    assert any(line.startswith(f"- not replayed: `{gone}`") for line in crosscheck_lines(run_dir))


# ---- refusals: one line, exit 2, nothing started ----------------------------------------------


def write_run(run_dir: Path) -> None:
    """A run folder as the analysis reads it: one ok HTTP/2 cell, one ok HTTP/1.1 cell."""
    (run_dir / schema.RAW_DIR).mkdir(parents=True)
    cells = {
        CELL: {"target": TARGET, "protocol": "h2", "name": "H2 /io?ms=50"},
        "io__fastapi-uvicorn__u10__t1": {
            "target": "fastapi-uvicorn", "protocol": "http", "name": "GET /io?ms=50"
        },
    }  # fmt: skip
    manifest = {"schema_version": schema.SCHEMA_VERSION, "status": "complete", "cells": []}
    (run_dir / schema.MANIFEST_FILE).write_text(json.dumps(manifest))
    with (run_dir / schema.SUMMARY_FILE).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(schema.SUMMARY_COLUMNS))
        writer.writeheader()
        for cell_id, cell in cells.items():
            raw = run_dir / schema.RAW_DIR / cell_id
            raw.mkdir()
            (raw / schema.LATENCY_FILE).write_text(json.dumps({"by_name": {cell["name"]: {}}}))
            writer.writerow(
                {"cell_id": cell_id, "target": cell["target"], "protocol": cell["protocol"],
                 "status": "ok", "users": 10, "streams": 8, "duration_s": 2, "rps": 100}
            )  # fmt: skip


def crosscheck(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "crosscheck", *argv],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gatebench: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.cli
def test_refuses_an_unknown_cell(tmp_path: Path) -> None:
    write_run(tmp_path)
    done = crosscheck(str(tmp_path), "--cells", f"{CELL},nope")
    refused(done, "unknown cell 'nope'", CELL)
    assert not (tmp_path / CROSSCHECK_FILE).exists()


@pytest.mark.cli
def test_refuses_a_cell_that_is_not_http2(tmp_path: Path) -> None:
    write_run(tmp_path)
    done = crosscheck(str(tmp_path), "--cells", "io__fastapi-uvicorn__u10__t1")
    refused(done, "io__fastapi-uvicorn__u10__t1", "not an HTTP/2 cell")


@pytest.mark.cli
def test_refuses_without_h2load(tmp_path: Path) -> None:
    write_run(tmp_path / "run")
    (tmp_path / "bin").mkdir()  # a PATH holding no h2load
    done = crosscheck(str(tmp_path / "run"), env={"PATH": str(tmp_path / "bin")})
    refused(done, NOT_INSTALLED)


@pytest.mark.cli
def test_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    refused(crosscheck(str(tmp_path)), str(tmp_path), "not a gatebench run folder")


# ---- h2load's text --------------------------------------------------------------------------

H2LOAD_OUTPUT = """\
Application protocol: h2c
finished in 2.50s, 1555.50 req/s, 102.00KB/s
requests: 3111 total, 3111 started, 3111 done, 3109 succeeded, 2 failed, 0 errored, 0 timeout
"""


def test_parses_h2loads_summary() -> None:
    assert parse_output(H2LOAD_OUTPUT) == (3109, 2, 1555.5, "h2c")
    with pytest.raises(ValueError, match="no request counts"):
        parse_output("connect failed\n")


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    assert percentile([], 0.5) is None


def test_no_block_without_crosscheck_csv(tmp_path: Path) -> None:
    assert crosscheck_lines(tmp_path) == []
