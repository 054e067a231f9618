"""A synthetic but realistic run folder for the analysis tests (summary, charts, report).

``make_run(root)`` writes what the runner would: manifest.json and raw/<cell_id>/ with an
exact HDR histogram (real ``HdrHistogram`` encoding), resource samples inside and outside
the measurement window, and locust's own stats CSV. One cell failed and has no raw files.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram

from harness import schema

SERVICE_TIME_MS = 50.0
DURATION_S = 10.0
WARMUP_S = 3.0
EPOCH = 1764075600.0

# Inside the window: server CPU 50 with one 40/60 pair (mean 50), RSS peaks at 120, generator 30.
# Outside it: absurd values, so any leak of warm-up or tail samples breaks the figures.
SERVER_CPU_MEAN = 50.0
SERVER_RSS_PEAK = 120.0
GENERATOR_CPU_MEAN = 30.0
OUTSIDE_CPU = 9999.0
OUTSIDE_RSS = 99999.0
SERVICE_RSS, SERVICE_RSS_PEAK = 200.0, 210.0  # database/upstream rows (real_io=True)

TARGETS = {
    "flask-gunicorn-sync": {
        "name": "flask-gunicorn-sync",
        "app": "targets.flask_app:app",
        "server": "gunicorn",
        "framework": "flask",
        "interface": "wsgi",
        "worker_class": "sync",
        "workers": 4,
        "threads": 1,
        "slots": 4,
        "description": "Flask on gunicorn, 4 sync workers",
    },
    "fastapi-uvicorn": {
        "name": "fastapi-uvicorn",
        "app": "targets.fastapi_app:app",
        "server": "uvicorn",
        "framework": "fastapi",
        "interface": "asgi",
        "worker_class": "asyncio",
        "workers": 1,
        "threads": 1,
        "slots": None,
        "description": "FastAPI on uvicorn, 1 process with an event loop",
    },
}

# (target, users) -> (successes/s, failures): what each ok cell "measured".
THROUGHPUT = {
    ("flask-gunicorn-sync", 10): (78.0, 0),
    ("flask-gunicorn-sync", 100): (77.0, 5),
    ("fastapi-uvicorn", 10): (195.0, 0),
    ("fastapi-uvicorn", 100): (1890.0, 0),
}
FAILED_CELL = ("flask-gunicorn-sync", 200)
FAILED_ERROR = "server did not answer on /health within 10 s"


@dataclass
class FakeRun:
    run_dir: Path
    latencies_us: dict[str, np.ndarray] = field(default_factory=dict)  # ok cells only
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)

    @staticmethod
    def cell_id(target: str, users: int, trial: int = 1, scenario: str = "io") -> str:
        return schema.Cell(
            scenario, target, "closed", users, None, trial, DURATION_S, WARMUP_S, SERVICE_TIME_MS
        ).cell_id


def encode(values_us: np.ndarray) -> str:
    histogram = HdrHistogram(1, 3_600_000_000, 3)
    for value in values_us:
        histogram.record_value(int(value))
    return histogram.encode().decode("ascii")


def _latency_doc(values_us: np.ndarray, failures: int, start: float) -> dict[str, object]:
    successes = len(values_us)
    per_second = [[s, successes // int(DURATION_S), 0] for s in range(int(DURATION_S))]
    per_second[-1][2] = failures
    kinds = {"HTTPError 500": failures - 2, "ConnectionRefusedError": 2} if failures else {}
    hist = encode(values_us)
    return {
        "schema": 1,
        "unit": "us",
        "window_start": start,
        "window_end": start + DURATION_S,
        "duration_s": DURATION_S,
        "warmup_s": WARMUP_S,
        "successes": successes,
        "failures": failures,
        "failures_by_kind": kinds,
        "histogram": hist,
        "per_second": per_second,
        "by_name": {"GET /io": {"successes": successes, "failures": failures, "histogram": hist}},
    }


def _write_resources(
    path: Path,
    start: float,
    generator_cpu: float = GENERATOR_CPU_MEAN,
    server_cpu: float = SERVER_CPU_MEAN,
    services: dict[str, float] | None = None,
) -> None:
    """Samples every 0.5 s from before the warm-up to after the window. ``services``: role
    ("database", "upstream") -> its CPU inside the window (RSS SERVICE_RSS, peak at index 5)."""
    end = start + DURATION_S
    rows: list[list[object]] = []
    t = start - WARMUP_S - 1.0
    index = 0
    while t <= end + 3.0:
        inside = start <= t <= end
        if inside:
            cpu = {5: server_cpu - 10.0, 6: server_cpu + 10.0}.get(index, server_cpu)
            rss = SERVER_RSS_PEAK if index == 5 else 100.0
            gen_cpu = generator_cpu
        else:
            cpu, rss, gen_cpu = OUTSIDE_CPU, OUTSIDE_RSS, OUTSIDE_CPU
        rows.append([round(t, 3), "server", cpu, rss, 5])
        rows.append([round(t, 3), "generator", gen_cpu, 80.0, 1])
        for role, service_cpu in (services or {}).items():
            peak = SERVICE_RSS_PEAK if index == 5 else SERVICE_RSS
            used, rss = (service_cpu, peak) if inside else (OUTSIDE_CPU, OUTSIDE_RSS)
            rows.append([round(t, 3), role, used, rss, 6])
        index += 1 if inside else 0
        t += 0.5
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "role", "cpu_pct", "rss_mb", "procs"])
        writer.writerows(rows)


LOCUST_COLUMNS = [
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time",
    "Average Response Time", "Min Response Time", "Max Response Time", "Average Content Size",
    "Requests/s", "Failures/s", "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%",
    "99.9%", "99.99%", "100%",
]  # fmt: skip


def _write_locust_stats(path: Path, values_us: np.ndarray, failures: int) -> None:
    ms = np.sort(values_us) / 1000.0
    count = len(ms) + failures

    def pct(q: float) -> int:  # locust rounds to ~2 significant digits
        return int(float(f"{np.percentile(ms, q):.2g}"))

    figures = [
        count, failures, pct(50), round(float(ms.mean()), 2), round(float(ms.min()), 2),
        round(float(ms.max()), 2), 17.0, round(count / (DURATION_S + WARMUP_S), 2),
        round(failures / (DURATION_S + WARMUP_S), 2),
        *(pct(q) for q in (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100)),
    ]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LOCUST_COLUMNS)
        writer.writerow(["GET", "/io", *figures])
        writer.writerow(["", "Aggregated", *figures])


def _cell(
    target: str,
    users: int,
    trial: int,
    status: str,
    scenario: str,
    rate: float | None = None,
    service_time_ms: float | None = SERVICE_TIME_MS,
) -> dict[str, object]:
    model = "closed" if rate is None else "open"
    cell = schema.Cell(
        scenario, target, model, users, rate, trial, DURATION_S, WARMUP_S, service_time_ms
    )
    record = schema.CellRecord(
        cell, status, "2026-11-25T13:00:00Z", "2026-11-25T13:00:14Z", None, []
    )
    if status == schema.STATUS_FAILED:
        record.error = FAILED_ERROR
    return record.to_dict()


def _closed_latencies(rng: np.random.Generator, users: int, rps: float, n: int) -> np.ndarray:
    mean_latency_us = users / rps * 1e6  # Little's law for a closed loop
    return rng.lognormal(np.log(mean_latency_us), 0.25, n).astype(np.int64)


def _write_cell(
    run: FakeRun,
    cell_id: str,
    values: np.ndarray,
    failures: int,
    start: float,
    generator_cpu: float = GENERATOR_CPU_MEAN,
    open_load: dict[str, object] | None = None,
    uncorrected: np.ndarray | None = None,
    server_cpu: float = SERVER_CPU_MEAN,
    services: dict[str, float] | None = None,
) -> None:
    """raw/<cell_id>/: latency.json (+ open-load fields), resources.csv, locust_stats.csv."""
    raw = run.run_dir / schema.RAW_DIR / cell_id
    raw.mkdir(parents=True)
    doc = _latency_doc(values, failures, start)
    if open_load is not None:
        doc["open"] = open_load
        doc["histogram_uncorrected"] = encode(values if uncorrected is None else uncorrected)
    (raw / schema.LATENCY_FILE).write_text(json.dumps(doc))
    _write_resources(raw / schema.RESOURCES_FILE, start, generator_cpu, server_cpu, services)
    _write_locust_stats(raw / "locust_stats.csv", values, failures)
    run.latencies_us[cell_id] = values
    run.windows[cell_id] = (start, start + DURATION_S)


# ---- cpu_scenario=True: scenario "cpu", where async does not help -----------------------------
CPU = "cpu"
# (target, users) -> rps: the stacks within 4% of each other; no service time declared.
CPU_THROUGHPUT = {
    ("flask-gunicorn-sync", 10): 500.0,
    ("fastapi-uvicorn", 10): 515.0,
    ("flask-gunicorn-sync", 50): 510.0,
    ("fastapi-uvicorn", 50): 530.0,
}


def _cpu_cells(run: FakeRun, rng: np.random.Generator, start: float) -> list[dict[str, object]]:
    cells: list[dict[str, object]] = []
    for (target, users), rps in CPU_THROUGHPUT.items():
        cell = _cell(target, users, 1, schema.STATUS_OK, CPU, service_time_ms=None)
        values = _closed_latencies(rng, users, rps, int(rps * DURATION_S))
        _write_cell(run, str(cell["cell_id"]), values, 0, start)
        cells.append(cell)
        start += 20.0
    return cells


# ---- measurement=True: scenario "measure", for trust in the numbers ---------------------------
MEASURE = "measure"
CALIBRATION = {
    "target": "fastapi-uvicorn",
    "route": "/health",
    "users": 64,
    "duration_s": 4.0,
    "rps": 3100.5,
    "generator_cpu_pct": 97.0,
    "note": "generator saturated: this is its ceiling",
}
FAILED_TARGET = "flask-gunicorn-gthread"
VERIFY_PROBLEM = "GET /io?ms=50 took 180.2 ms, expected 50 ms"
VERIFY = {
    "fastapi-uvicorn": {
        "target": "fastapi-uvicorn", "passed": True, "problems": [], "io_ms": 50.8,
        "io_expected_ms": 50.0, "checked": 31,
    },
    "flask-gunicorn-sync": {
        "target": "flask-gunicorn-sync", "passed": True, "problems": [], "io_ms": 51.2,
        "io_expected_ms": 50.0, "checked": 31,
    },
    FAILED_TARGET: {
        "target": FAILED_TARGET, "passed": False, "problems": [VERIFY_PROBLEM], "io_ms": 180.2,
        "io_expected_ms": 50.0, "checked": 31,
    },
}  # fmt: skip
SKIP_ERROR = f"target {FAILED_TARGET} failed the verify gate: {VERIFY_PROBLEM}"
GTHREAD_TARGET = {
    "name": FAILED_TARGET,
    "app": "targets.flask_app:app",
    "server": "gunicorn",
    "framework": "flask",
    "interface": "wsgi",
    "worker_class": "gthread",
    "workers": 2,
    "threads": 4,
    "slots": 8,
    "description": "Flask on gunicorn, 2 gthread workers x 4 threads",
}
# (target, users) -> rps of trials 1, 2, 3: stable (CV 5%) and unstable (CV 14%).
TRIAL_RPS = {
    ("fastapi-uvicorn", 10): (190.0, 200.0, 210.0),
    ("flask-gunicorn-sync", 10): (60.0, 70.0, 80.0),
}
# One trial each: (target, users) -> (rps, failures, generator CPU %).
BUSY_GENERATOR = ("fastapi-uvicorn", 50, 900.0, 0, 96.0)  # generator-bound by CPU
NEAR_CEILING = ("fastapi-uvicorn", 100, 2950.0, 0, GENERATOR_CPU_MEAN)  # by the ceiling
ERRORS = ("flask-gunicorn-sync", 50, 72.0, 80, GENERATOR_CPU_MEAN)  # 80 / 800 = 10% errors
# Open load: (target, rate) -> (launched, late, dropped, stalled)
OPEN_CELLS = {
    ("fastapi-uvicorn", 50.0): (500, 0, 0, False),
    ("flask-gunicorn-sync", 50.0): (500, 2, 0, True),  # stalled: corrected p99 ~ 1 s
    ("fastapi-uvicorn", 400.0): (4000, 72, 5, False),  # 1.8% late, 5 dropped: generator-bound
}
STALL_AT_S, STALL_FOR_S = 5.0, 1.0


def measure_cell_id(target: str, users: int = 1, trial: int = 1, rate: float | None = None) -> str:
    model = "closed" if rate is None else "open"
    return schema.Cell(
        MEASURE, target, model, users, rate, trial, DURATION_S, WARMUP_S, SERVICE_TIME_MS
    ).cell_id


def _measurement_cells(run: FakeRun, rng: np.random.Generator, start: float) -> list[dict]:
    """Trials, generator-bound cells, an error cell, skipped cells, open cells and a stall."""
    cells: list[dict[str, object]] = []
    for (target, users), trial_rps in TRIAL_RPS.items():
        for trial, rps in enumerate(trial_rps, start=1):
            cell = _cell(target, users, trial, schema.STATUS_OK, MEASURE)
            values = _closed_latencies(rng, users, rps, int(rps * DURATION_S))
            _write_cell(run, str(cell["cell_id"]), values, 0, start)
            cells.append(cell)
            start += 20.0
    for target, users, rps, failures, cpu in (BUSY_GENERATOR, NEAR_CEILING, ERRORS):
        cell = _cell(target, users, 1, schema.STATUS_OK, MEASURE)
        values = _closed_latencies(rng, users, rps, int(rps * DURATION_S))
        _write_cell(run, str(cell["cell_id"]), values, failures, start, generator_cpu=cpu)
        cells.append(cell)
        start += 20.0
    for trial in (1, 2, 3):
        cell = _cell(FAILED_TARGET, 10, trial, schema.STATUS_SKIPPED, MEASURE)
        cell["error"] = SKIP_ERROR
        cells.append(cell)
    for (target, rate), (launched, late, dropped, stalled) in OPEN_CELLS.items():
        cell = _cell(target, 1, 1, schema.STATUS_OK, MEASURE, rate=rate)
        cell_id = str(cell["cell_id"])
        sent = rng.lognormal(np.log(51_000), 0.05, launched - dropped).astype(np.int64)
        corrected = sent.copy()
        if stalled:  # arrivals during the 1 s pause waited for it: 500..1050 ms from intended
            corrected[:50] = np.linspace(500_000, 1_050_000, 50).astype(np.int64)
        schedule = {
            "rate": rate, "arrivals": "poisson", "launched": launched, "late": late,
            "dropped": dropped, "max_lateness_ms": 12.5 if late else 0.0,
        }  # fmt: skip
        _write_cell(run, cell_id, corrected, 0, start, open_load=schedule, uncorrected=sent)
        if stalled:
            raw = run.run_dir / schema.RAW_DIR / cell_id
            stall = {"at": start + STALL_AT_S, "for_s": STALL_FOR_S}
            (raw / schema.STALL_FILE).write_text(json.dumps(stall))
            doc = json.loads((raw / schema.LATENCY_FILE).read_text())
            per_second = doc["per_second"]  # nothing completes in the pause, then a burst
            per_second[int(STALL_AT_S)][1], per_second[int(STALL_AT_S) + 1][1] = 0, 100
            (raw / schema.LATENCY_FILE).write_text(json.dumps(doc))
        cells.append(cell)
        start += 20.0
    return cells


# ---- real_io=True: scenarios "db" (needs a database) and "upstream", targets with pools ---------
DB, UPSTREAM = "db", "upstream"
GTHREAD = "flask-gunicorn-gthread"
SMALLPOOL = "flask-gunicorn-gthread-smallpool"
POOLS = {"fastapi-uvicorn": 10, GTHREAD: 8, SMALLPOOL: 2}  # per process; 4 workers for gthread
POOL_TOTALS = {"fastapi-uvicorn": 10, GTHREAD: 32, SMALLPOOL: 8}
REAL_IO_TARGETS = {
    GTHREAD: {**GTHREAD_TARGET, "workers": 4, "threads": 8, "slots": 32, "pool": POOLS[GTHREAD],
              "concurrency": "threads",
              "description": "Flask on gunicorn, 4 gthread workers x 8 threads, pool 8 each"},
    SMALLPOOL: {**GTHREAD_TARGET, "name": SMALLPOOL, "workers": 4, "threads": 8, "slots": 32,
                "pool": POOLS[SMALLPOOL], "concurrency": "threads",
                "description": "Flask on gunicorn, 4 gthread workers x 8 threads, pool 2 each"},
}  # fmt: skip
# (scenario, target, users) -> (rps, server CPU %, database or upstream CPU %). One core for the
# server (pinning [0]): fastapi at 100 users is held by its pool of 10 (200 rps); gthread on db by
# the database's CPU sharing the core (560 x 100 / (30 + 62) = 609 < 640 slots); the small pool
# (8 connections: 160 rps) by its pool.
REAL_IO_CELLS = {
    (DB, "fastapi-uvicorn", 10): (190.0, 20.0, 8.0),
    (DB, "fastapi-uvicorn", 100): (196.0, 25.0, 10.0),
    (DB, GTHREAD, 10): (192.0, 15.0, 20.0),
    (DB, GTHREAD, 100): (560.0, 30.0, 62.0),
    (DB, SMALLPOOL, 10): (150.0, 12.0, 15.0),
    (DB, SMALLPOOL, 100): (154.0, 12.0, 15.0),
    (UPSTREAM, "fastapi-uvicorn", 10): (191.0, 22.0, 9.0),
    (UPSTREAM, "fastapi-uvicorn", 100): (195.0, 26.0, 12.0),
    (UPSTREAM, GTHREAD, 10): (190.0, 18.0, 9.0),
    (UPSTREAM, GTHREAD, 100): (620.0, 40.0, 35.0),
}
REAL_IO_SCENARIOS = {
    DB: {
        "file": "scenarios/db.py",
        "sha256": "4" * 64,
        "description": "A real query: GET /db?ms=50 waits 50 ms inside PostgreSQL.",
        "settings": {"service_time_ms": SERVICE_TIME_MS, "users": [10, 100], "needs": "database"},
    },
    UPSTREAM: {
        "file": "scenarios/upstream.py",
        "sha256": "5" * 64,
        "description": "A real HTTP call: GET /upstream?ms=50 calls a service answering in 50 ms.",
        "settings": {"service_time_ms": SERVICE_TIME_MS, "users": [10, 100], "needs": "upstream"},
    },
}


def real_io_cell_id(scenario: str, target: str, users: int) -> str:
    return FakeRun.cell_id(target, users, scenario=scenario)


def _real_io_cells(run: FakeRun, rng: np.random.Generator, start: float) -> list[dict]:
    cells: list[dict[str, object]] = []
    for (scenario, target, users), (rps, server_cpu, service_cpu) in REAL_IO_CELLS.items():
        cell = _cell(target, users, 1, schema.STATUS_OK, scenario)
        values = _closed_latencies(rng, users, rps, int(rps * DURATION_S))
        role = "database" if scenario == DB else "upstream"
        _write_cell(
            run, str(cell["cell_id"]), values, 0, start, server_cpu=server_cpu,
            services={role: service_cpu},
        )  # fmt: skip
        cells.append(cell)
        start += 20.0
    return cells


def make_run(
    root: Path,
    trials: int = 1,
    extra_scenario: bool = False,
    measurement: bool = False,
    cpu_scenario: bool = False,
    real_io: bool = False,
) -> FakeRun:
    """Write a run folder under ``root``: io x 2 targets x users 10/100 (+1 failed cell).

    ``extra_scenario`` adds a scenario "broken" whose only cell failed (charts must skip it).
    ``cpu_scenario`` adds the scenario "cpu" (CPU_THROUGHPUT: ASGI/WSGI within 4%).
    ``measurement`` adds the scenario "measure" (see _measurement_cells), a calibration, a
    verify gate with one failed target, open-load options and a stall.
    ``real_io`` adds the scenarios "db" and "upstream" (REAL_IO_CELLS) and pools to the targets
    (POOLS; fastapi-uvicorn's pool is there for its io cells too, where it must not count).
    """
    run_dir = root / "20261125T130000Z-abc1234"
    run = FakeRun(run_dir)
    rng = np.random.default_rng(42)
    cells: list[dict[str, object]] = []
    start = EPOCH
    for trial in range(1, trials + 1):
        for (target, users), (rps, failures) in THROUGHPUT.items():
            cell = _cell(target, users, trial, schema.STATUS_OK, "io")
            cells.append(cell)
            successes = int(rps * DURATION_S) + (trial - 1) * 10
            values = _closed_latencies(rng, users, rps, successes)
            _write_cell(run, str(cell["cell_id"]), values, failures, start)
            start += 20.0
        cells.append(_cell(*FAILED_CELL, trial, schema.STATUS_FAILED, "io"))
    scenarios = {
        "io": {
            "file": "scenarios/io.py",
            "sha256": "3f5a9c0e1b2d4f6a8c0e1b2d4f6a8c0e1b2d4f6a8c0e1b2d4f6a8c0e1b2d4f6a",
            "description": "I/O-bound endpoint: GET /io waits 50 ms, like a database call.\n\n"
            "The rest of the docstring.",
            "settings": {"service_time_ms": SERVICE_TIME_MS, "users": [10, 100, 200]},
        }
    }
    if extra_scenario:
        cells.append(_cell("fastapi-uvicorn", 10, 1, schema.STATUS_FAILED, "broken"))
        scenarios["broken"] = {
            "file": "scenarios/broken.py",
            "sha256": "0" * 64,
            "description": "A scenario whose cells all fail.",
            "settings": {},
        }
    if cpu_scenario:
        cells += _cpu_cells(run, rng, start + 1000.0)
        scenarios[CPU] = {
            "file": "scenarios/cpu.py",
            "sha256": "2" * 64,
            "description": "CPU-bound: every request hashes on the server.",
            "settings": {"users": [10, 50]},
        }
    targets = dict(TARGETS)
    options: dict[str, object] = {"profile": "smoke", "duration_s": DURATION_S, "trials": trials}
    if measurement:
        options.update(
            arrivals="poisson",
            rates=sorted({rate for _, rate in OPEN_CELLS}),
            stall={"at_s": STALL_AT_S, "for_s": STALL_FOR_S},
        )
        cells += _measurement_cells(run, rng, start)
        scenarios[MEASURE] = {
            "file": "scenarios/measure.py",
            "sha256": "1" * 64,
            "description": "Measurement checks: trials, generator limits, open load, a stall.",
            "settings": {"service_time_ms": SERVICE_TIME_MS, "users": [10, 50, 100]},
        }
        targets[FAILED_TARGET] = GTHREAD_TARGET
    if real_io:
        cells += _real_io_cells(run, rng, start + 5000.0)
        scenarios.update(REAL_IO_SCENARIOS)
        targets.update(REAL_IO_TARGETS)
        targets["fastapi-uvicorn"] = {
            **targets["fastapi-uvicorn"],
            "pool": POOLS["fastapi-uvicorn"],
        }
    manifest: dict[str, object] = {
        "schema_version": schema.SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": "failed",
        "created_at": "2026-11-25T13:00:00Z",
        "finished_at": "2026-11-25T13:03:00Z",
        "argv": ["python", "-m", "harness", "run", "--profile", "smoke"],
        "options": options,
        "profile": {"name": "smoke", "users": [10, 100, 200], "duration_s": DURATION_S},
        "machine": {
            "cpu_model": "Example CPU @ 3.0GHz",
            "cpu_count": 2,
            "platform": "Linux-6.1-x86_64",
            "python": "3.11.7",
            "hostname": "bench-box",
        },
        "pinning": {
            "server_cpus": [0],
            "generator_cpus": [1],
            "applied": True,
            "note": "taskset",
        },
        "packages": {"locust": "2.47.0", "flask": "3.1.0", "fastapi": "0.115.0"},
        "git": {"sha": "abc1234", "dirty": False},
        "scenarios": scenarios,
        "targets": targets,
        "cells": cells,
        "warnings": ["generator CPU set shares a core with the server (smoke profile)"],
    }
    if measurement:
        manifest["calibration"] = CALIBRATION
        manifest["verify"] = VERIFY
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / schema.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return run
