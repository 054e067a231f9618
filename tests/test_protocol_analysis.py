"""The protocol section in the analysis: cost per request of TLS and new connections, HTTP/2
against HTTP/1.1, and the chart.

Synthetic run folders only: manifest.json and a summary.csv written from rows with the schema 7
columns (``tls``, ``connection``, ``streams``, ``client``, ``protocol``); no server, TLS or h2
connection is started here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analysis_fixtures import make_run

from harness import schema
from harness.charts.common import target_colours
from harness.charts.draw import run_wide_charts
from harness.charts.paths import PROTOCOL_CAPTION, protocol_chart_path
from harness.charts.protocol import protocol_chart
from harness.report.markdown import render_report
from harness.report.protocol import TITLE, protocol_section
from harness.results.folder import Results, load
from harness.results.protocol import (
    cost_table,
    cpu_us_per_request,
    find_twin,
    h2_scenarios,
    kind_costs,
)
from harness.results.summary import coerce_summary
from harness.results.targets import target_settings

UVICORN, GTHREAD = "fastapi-uvicorn", "flask-gunicorn-gthread"
HYPERCORN, HYPERCORN_H2C, HYPERCORN_H2 = (
    "fastapi-hypercorn",
    "fastapi-hypercorn-h2c",
    "fastapi-hypercorn-h2",
)
GRANIAN, GRANIAN_H2C = "fastapi-granian", "fastapi-granian-h2c"
ASGI = {"framework": "fastapi", "interface": "asgi", "workers": 1, "threads": None,
        "concurrency": "event-loop", "slots": None, "http": "1.1", "tls": False}  # fmt: skip
TARGETS: dict[str, dict[str, Any]] = {
    UVICORN: {**ASGI, "server": "uvicorn", "worker_class": None},
    GTHREAD: {
        "framework": "flask",
        "interface": "wsgi",
        "server": "gunicorn",
        "worker_class": "gthread",
        "workers": 2,
        "threads": 4,
        "concurrency": "threads",
        "slots": 8,
        "http": "1.1",
        "tls": False,
    },
    HYPERCORN: {**ASGI, "server": "hypercorn", "worker_class": None},
    HYPERCORN_H2C: {**ASGI, "server": "hypercorn", "worker_class": None, "http": "2"},
    HYPERCORN_H2: {**ASGI, "server": "hypercorn", "worker_class": None, "http": "2", "tls": True},
    GRANIAN: {**ASGI, "server": "granian", "worker_class": "asgi"},
    GRANIAN_H2C: {**ASGI, "server": "granian", "worker_class": "asgi", "http": "2"},
}
# scenario -> (tls, connection) of its FastHttpUser cells (a TLS target's row adds TLS)
LINKS = {
    "health": (False, "keep-alive"),
    "tls": (True, "keep-alive"),
    "newconn": (False, "close"),
    "newconn_tls": (True, "close"),
}
# (scenario, target, users) -> [(rps, server CPU %, connections per request, generator-bound)]
# one tuple per trial. fastapi-uvicorn at 64 users: health 150 µs, tls 200 and 220 µs (median of
# the trials' 210, not 68% / 3250 rps), newconn 250, newconn_tls 600. flask-gunicorn-gthread has
# no newconn_tls cell at 64, so it is compared at 10 users, where it has all four.
COST_CELLS: dict[tuple[str, str, int], list[tuple[float, float, float, bool]]] = {
    ("health", UVICORN, 10): [(2000.0, 40.0, 0.001, True)],
    ("health", UVICORN, 64): [(4000.0, 60.0, 0.001, True)],
    ("tls", UVICORN, 10): [(1800.0, 40.0, 0.001, False)],
    ("tls", UVICORN, 64): [(3500.0, 70.0, 0.001, False), (3000.0, 66.0, 0.001, False)],
    ("newconn", UVICORN, 64): [(2000.0, 50.0, 1.0, False)],
    ("newconn_tls", UVICORN, 64): [(1000.0, 60.0, 1.0, False)],
    ("health", GTHREAD, 10): [(1500.0, 60.0, 0.0, False)],  # 400 µs
    ("health", GTHREAD, 64): [(2000.0, 80.0, 0.0, False)],
    ("tls", GTHREAD, 10): [(1200.0, 60.0, 0.0, False)],  # 500 µs
    ("tls", GTHREAD, 64): [(1600.0, 80.0, 0.0, False)],
    ("newconn", GTHREAD, 10): [(800.0, 48.0, 0.5, False)],  # 600 µs, half the connections
    ("newconn", GTHREAD, 64): [(1000.0, 60.0, 0.5, False)],
    ("newconn_tls", GTHREAD, 10): [(400.0, 40.0, 1.0, False)],  # 1000 µs
    # A TLS row: its health cells speak TLS, so it has no plain baseline.
    ("health", HYPERCORN_H2, 64): [(3000.0, 60.0, 0.001, False)],
}
# h2 scenario (client httpx, 8 streams): (target, users) -> (protocol, rps, CPU %, gen-bound,
# status)
H2_CELLS: dict[tuple[str, int], tuple[str, float, float, bool, str]] = {
    (HYPERCORN, 10): ("http", 1500.0, 30.0, False, "ok"),  # 200 µs
    (HYPERCORN, 50): ("http", 3000.0, 90.0, False, "ok"),  # 300 µs
    (HYPERCORN_H2C, 10): ("h2", 1550.0, 27.9, False, "ok"),  # 180 µs
    (HYPERCORN_H2C, 50): ("h2", 2400.0, 50.0, True, "ok"),
    (HYPERCORN_H2, 10): ("h2", 1200.0, 36.0, False, "ok"),  # 300 µs
    (HYPERCORN_H2, 50): ("h2", 2000.0, 70.0, False, "ok"),  # 350 µs
    (GRANIAN, 10): ("http", 1600.0, 20.0, False, "ok"),  # 125 µs
    (GRANIAN, 50): ("http", 0.0, 0.0, False, "failed"),
    (GRANIAN_H2C, 10): ("h2", 1600.0, 16.0, False, "ok"),  # 100 µs
    (GRANIAN_H2C, 50): ("h2", 3800.0, 30.0, False, "ok"),
    (GTHREAD, 10): ("http", 150.0, 30.0, False, "ok"),
}
STREAMS = 8


def _row(scenario: str, target: str, users: int, trial: int, **figures: Any) -> dict[str, Any]:
    cell_id = f"{scenario}__{target}__u{users}__t{trial}"
    settings = TARGETS[target]
    row: dict[str, Any] = dict.fromkeys(schema.SUMMARY_COLUMNS)
    row.update(
        scenario=scenario, target=target, interface=settings["interface"],
        server=settings["server"], framework=settings["framework"], load_model="closed",
        users=users, trial=trial, duration_s=10.0, status="ok", cell_id=cell_id,
        failures=0, p50_ms=1.0, p99_ms=4.0, generator_cpu_pct=60.0, protocol="http",
        client="fasthttp", connection="keep-alive", tls=settings["tls"], error_rate=0.0,
    )  # fmt: skip
    row.update(figures)
    return row


def _scenario(settings: dict[str, Any]) -> dict[str, Any]:
    return {"file": "scenarios/x.py", "sha256": "0" * 64, "description": "", "settings": settings}


def write_run(root: Path, cost: bool = True, h2: bool = True) -> Path:
    """A run folder with the cost scenarios (COST_CELLS) and/or the h2 scenario (H2_CELLS)."""
    run_dir = root / "20261201T120000Z-proto01"
    run_dir.mkdir(parents=True)
    rows, scenarios = [], {}
    if cost:
        for (scenario, target, users), trials in COST_CELLS.items():
            tls, connection = LINKS[scenario]
            for trial, (rps, cpu, conns, bound) in enumerate(trials, start=1):
                rows.append(
                    _row(
                        scenario,
                        target,
                        users,
                        trial,
                        rps=rps,
                        server_cpu_pct=cpu,
                        connections_per_request=conns,
                        generator_bound=bound,
                        tls=tls or TARGETS[target]["tls"],
                        connection=connection,
                        requests=int(rps * 10),
                        limiter="generator" if bound else "server_cpu",
                        limited_by="generator CPU" if bound else "server CPU",
                    )
                )
        for scenario, (tls, connection) in LINKS.items():
            scenarios[scenario] = _scenario(
                {"users": [10, 64], "tls": tls, "connection": connection}
            )
    if h2:
        for (target, users), (protocol, rps, cpu, bound, status) in H2_CELLS.items():
            figures: dict[str, Any] = {"status": status, "streams": STREAMS, "client": "httpx"}
            if status == "ok":
                figures.update(
                    rps=rps, server_cpu_pct=cpu, generator_bound=bound, protocol=protocol,
                    connections_per_request=0.0, limiter="users",
                    limited_by=f"the users: {users * STREAMS} / 50 ms", service_time_ms=50.0,
                    requests=int(rps * 10),
                )  # fmt: skip
            else:
                figures.update(protocol=None, client=None, generator_cpu_pct=None)
            rows.append(_row("h2", target, users, 1, **figures))
        scenarios["h2"] = _scenario({"users": [10, 50], "streams": STREAMS, "http": ["1.1", "2"]})
    frame = coerce_summary(pd.DataFrame(rows, columns=list(schema.SUMMARY_COLUMNS)))
    frame.to_csv(run_dir / schema.SUMMARY_FILE, index=False)
    manifest = {
        "schema_version": schema.SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": "complete",
        "scenarios": scenarios,
        "targets": {name: {"name": name, **settings} for name, settings in TARGETS.items()},
        "cells": [{"cell_id": r["cell_id"], "status": r["status"]} for r in rows],
        "pinning": {"server_cpus": [0], "generator_cpus": [1], "applied": True},
    }
    (run_dir / schema.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("protocol"))


def section(text: str) -> str:
    start = text.index(TITLE)
    end = text.find("\n## ", start + len(TITLE))
    return text[start : end if end >= 0 else len(text)]


# ---- cost per request ----------------------------------------------------------------------------


def test_cpu_per_request_arithmetic() -> None:
    assert cpu_us_per_request(60.0, 4000.0) == pytest.approx(150.0)
    assert cpu_us_per_request(27.9, 1550.0) == pytest.approx(180.0)
    assert cpu_us_per_request(None, 100.0) is None
    assert cpu_us_per_request(50.0, 0.0) is None


def test_cost_table_per_target_at_the_shared_level(run_dir: Path) -> None:
    found = cost_table(load(run_dir))
    assert found is not None
    rows = found.rows.set_index(["target", "scenario"])
    uvicorn = rows.loc[UVICORN]
    assert set(uvicorn["users"]) == {64.0}  # all four scenarios there
    assert uvicorn.loc["health", "cpu_us"] == pytest.approx(150.0)
    assert bool(uvicorn.loc["health", "baseline"]) and bool(
        uvicorn.loc["health", "generator_bound"]
    )
    # Median of the trials' own CPU per request (200, 220), not 68% / 3250 rps.
    assert uvicorn.loc["tls", "cpu_us"] == pytest.approx(210.0)
    assert uvicorn.loc["tls", "rps"] == pytest.approx(3250.0)
    assert uvicorn.loc["tls", "trials"] == 2
    assert uvicorn.loc["tls", "extra_us"] == pytest.approx(60.0)
    assert uvicorn.loc["newconn", "extra_us"] == pytest.approx(100.0)
    assert uvicorn.loc["newconn_tls", "extra_us"] == pytest.approx(450.0)
    assert uvicorn.loc["newconn", "connections_per_request"] == pytest.approx(1.0)
    gthread = rows.loc[GTHREAD]
    assert set(gthread["users"]) == {10.0}  # newconn_tls has no cell at 64
    assert [gthread.loc[s, "extra_us"] for s in ("tls", "newconn", "newconn_tls")] == [
        pytest.approx(100.0), pytest.approx(200.0), pytest.approx(600.0)
    ]  # fmt: skip
    assert pd.isna(gthread.loc["health", "extra_us"])
    # Baseline first, then TLS, new connection, new TLS connection.
    order = list(found.rows[found.rows["target"] == UVICORN]["scenario"])
    assert order == ["health", "tls", "newconn", "newconn_tls"]


def test_a_tls_row_has_no_plain_baseline(run_dir: Path) -> None:
    found = cost_table(load(run_dir))
    assert found is not None
    h2 = found.rows[found.rows["target"] == HYPERCORN_H2].iloc[0]
    assert h2["scenario"] == "health" and bool(h2["tls"]) and not bool(h2["baseline"])
    assert pd.isna(h2["extra_us"])
    assert f"{HYPERCORN_H2}: no `health` cell over plain TCP with keep-alive" in found.missing


def test_kind_costs_across_targets(run_dir: Path) -> None:
    found = cost_table(load(run_dir))
    assert found is not None
    costs = {c.kind: c for c in kind_costs(found)}
    assert list(costs) == [
        "TLS, keep-alive", "a new connection per request", "a new TLS connection per request"
    ]  # fmt: skip
    assert costs["TLS, keep-alive"].extras == {
        UVICORN: pytest.approx(60),
        GTHREAD: pytest.approx(100),
    }
    assert costs["a new TLS connection per request"].extras[GTHREAD] == pytest.approx(600)


# ---- HTTP/2 ------------------------------------------------------------------------------------


def test_twins_by_the_target_settings(run_dir: Path) -> None:
    settings = target_settings(load(run_dir))
    http1 = [UVICORN, GTHREAD, HYPERCORN, GRANIAN]
    assert find_twin(HYPERCORN_H2C, http1, settings) == HYPERCORN
    assert find_twin(GRANIAN_H2C, http1, settings) == GRANIAN
    assert find_twin(HYPERCORN_H2, http1, settings) == HYPERCORN  # TLS differs too
    assert find_twin(HYPERCORN_H2C, [UVICORN, GTHREAD], settings) is None


def test_h2_pairs_and_what_was_left_out(run_dir: Path) -> None:
    (scenario,) = h2_scenarios(load(run_dir))
    assert scenario.name == "h2"
    pairs = {(p.target, p.users): p for p in scenario.pairs}
    assert set(pairs) == {(HYPERCORN_H2C, 10), (HYPERCORN_H2, 10), (HYPERCORN_H2, 50),
                          (GRANIAN_H2C, 10)}  # fmt: skip
    h2c = pairs[(HYPERCORN_H2C, 10)]
    assert h2c.twin == HYPERCORN and h2c.streams == STREAMS
    assert h2c.rps_ratio == pytest.approx(1550 / 1500)
    assert h2c.cpu_ratio == pytest.approx(180 / 200)
    tls = pairs[(HYPERCORN_H2, 50)]
    assert tls.tls and not tls.twin_tls and tls.cpu_ratio == pytest.approx(350 / 300)
    granian = pairs[(GRANIAN_H2C, 10)]
    assert granian.cpu_ratio == pytest.approx(100 / 125)
    assert scenario.left_out == [
        f"{HYPERCORN_H2C} vs {HYPERCORN} at 50 users: {HYPERCORN_H2C} generator-bound",
        f"{GRANIAN_H2C} vs {GRANIAN} at 50 users: {GRANIAN} failed cell",
    ]


def test_h2_medians_speak_the_protocol_of_their_requests(run_dir: Path) -> None:
    (scenario,) = h2_scenarios(load(run_dir))
    medians = scenario.medians.set_index(["target", "users"])
    assert medians.loc[(HYPERCORN_H2C, 10), "protocol"] == "h2"
    assert medians.loc[(HYPERCORN, 10), "protocol"] == "http"
    assert medians.loc[(HYPERCORN, 50), "in_flight"] == 50 * STREAMS
    assert medians.loc[(HYPERCORN, 50), "cpu_us"] == pytest.approx(300)
    assert bool(medians.loc[(HYPERCORN_H2, 10), "tls"])
    assert (GRANIAN, 50) not in medians.index  # failed: no figures


# ---- report and chart --------------------------------------------------------------------------


def test_report_section(run_dir: Path) -> None:
    text = section(render_report(load(run_dir)))
    assert "### Cost per request: TLS and new connections" in text
    assert (
        "| fastapi-uvicorn | `tls` | TLS, keep-alive | 64 | 3,250.0 | 68.0 | 210.0 | +60 |" in text
    )
    assert "| fastapi-uvicorn | `health` | plain TCP, keep-alive | 64 | 4,000.0 | 60.0 | 150.0 | " \
        "baseline | 0.00 | yes |" in text  # fmt: skip
    assert (
        "TLS, keep-alive adds 60–100 µs of server CPU per request over `health` "
        "(least: fastapi-uvicorn, 60; most: flask-gunicorn-gthread, 100)."
    ) in text
    assert "A new connection per request adds 100–200 µs" in text
    assert "A new TLS connection per request adds 450–600 µs" in text
    assert "Fewer than 0.9 connections per request on flask-gunicorn-gthread 0.50" in text
    assert "Generator-bound (requests/s measures locust there" in text
    assert "fastapi-uvicorn `health`" in text
    assert "Not in the table: fastapi-hypercorn-h2: no `health` cell" in text
    assert "### HTTP/2 against HTTP/1.1: `h2`" in text
    assert "| fastapi-hypercorn-h2c | h2 | no | 10 × 8 | 1,550.0 |" in text
    assert (
        "- fastapi-hypercorn-h2c (h2) against fastapi-hypercorn (HTTP/1.1) at 10 users × 8 "
        "streams: 1.03× the requests/s (1,550.0 vs 1,500.0) at 0.90× the server CPU per "
        "request (180 vs 200 µs)."
    ) in text
    assert "fastapi-hypercorn-h2 (h2 over TLS) against fastapi-hypercorn (HTTP/1.1, so TLS " \
        "differs too) at 50 users" in text  # fmt: skip
    assert f"Left out: {HYPERCORN_H2C} vs {HYPERCORN} at 50 users: {HYPERCORN_H2C} " \
        "generator-bound;" in text  # fmt: skip


def test_section_placed_after_real_io_before_scenarios(run_dir: Path) -> None:
    report = render_report(load(run_dir))
    assert report.index(TITLE) < report.index("## Scenario `health`")


def test_only_h2_cells_or_only_cost_cells(tmp_path: Path) -> None:
    only_h2 = load(write_run(tmp_path / "a", cost=False))
    lines = protocol_section(only_h2)
    assert lines[0] == TITLE and "### Cost per request" not in "\n".join(lines)
    only_cost = load(write_run(tmp_path / "b", h2=False))
    assert h2_scenarios(only_cost) == []
    assert "### HTTP/2" not in "\n".join(protocol_section(only_cost))
    path = protocol_chart(only_cost, tmp_path / "cost.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_protocol_cells_no_section_and_no_chart(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    results = load(run.run_dir)
    assert cost_table(results) is None and h2_scenarios(results) == []
    assert protocol_section(results) == []
    assert TITLE not in render_report(results)
    path = protocol_chart_path(run.run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stale")  # from an earlier drawing: removed, never shown
    written = run_wide_charts(results, target_colours(results.target_names))
    assert path not in written and not path.exists()


def test_chart_written_and_linked(run_dir: Path) -> None:
    results = load(run_dir)
    written = run_wide_charts(results, target_colours(results.target_names))
    path = protocol_chart_path(run_dir)
    assert path in written and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000
    report = render_report(results)
    assert "![protocol costs](charts/protocol.png)" in report
    assert f"*{PROTOCOL_CAPTION}*" in report


def test_an_h2_row_without_a_twin_is_named(run_dir: Path) -> None:
    results = load(run_dir)
    manifest = dict(results.manifest)
    targets = dict(manifest["targets"])
    del targets[GRANIAN]  # its rows stay in the summary, without workers or an HTTP version
    manifest["targets"] = targets
    (scenario,) = h2_scenarios(Results(manifest, results.summary, run_dir))  # type: ignore[arg-type]
    assert all(pair.target != GRANIAN_H2C for pair in scenario.pairs)
    assert (
        f"{GRANIAN_H2C}: no HTTP/1.1 twin (same framework, server and workers)" in scenario.left_out
    )


def test_a_server_without_keep_alive_is_set_aside_where_it_would_mislead() -> None:
    """gunicorn's sync worker closes every connection itself: its `health` already opens one
    per request, so its `tls` cells pay a TLS handshake per request (not TLS on a kept
    connection) and its `newconn` cells change nothing: neither goes into those ranges."""
    from harness.report.protocol import kind_sentence
    from harness.results.protocol import CostTable

    def row(target: str, scenario: str, tls: bool, connection: str, conns: float,
            extra: float | None) -> dict[str, Any]:  # fmt: skip
        return {"target": target, "scenario": scenario, "tls": tls, "connection": connection,
                "connections_per_request": conns, "extra_us": extra,
                "baseline": scenario == "health"}  # fmt: skip

    sync, uvicorn = "flask-gunicorn-sync", UVICORN
    table = CostTable(pd.DataFrame([
        row(sync, "health", False, "keep-alive", 1.0, None),
        row(sync, "tls", True, "keep-alive", 1.0, 1361.0),
        row(sync, "newconn", False, "close", 1.0, -94.0),
        row(sync, "newconn_tls", True, "close", 1.0, 1353.0),
        row(uvicorn, "health", False, "keep-alive", 0.0, None),
        row(uvicorn, "tls", True, "keep-alive", 0.0, 8.0),
        row(uvicorn, "newconn", False, "close", 1.0, 72.0),
        row(uvicorn, "newconn_tls", True, "close", 1.0, 473.0),
    ]))  # fmt: skip
    costs = {c.kind: c for c in kind_costs(table)}
    tls = costs["TLS, keep-alive"]
    assert tls.extras == {uvicorn: 8.0} and tls.not_kept == {sync: 1.0}
    newconn = costs["a new connection per request"]
    assert newconn.extras == {uvicorn: 72.0} and newconn.unchanged == [sync]
    handshake = costs["a new TLS connection per request"]  # a handshake either way: counted
    assert handshake.extras == {sync: 1353.0, uvicorn: 473.0}
    text = kind_sentence(tls)
    assert text.startswith("TLS, keep-alive adds 8.0 µs of server CPU per request over `health`")
    assert f"Not counted for TLS, keep-alive: {sync} (1.00)" in text
    assert f"{sync}, whose `health` already opened a connection per request" in (
        kind_sentence(newconn)
    )
