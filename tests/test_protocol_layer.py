"""The protocol layer's logic: connection policies, which targets a scenario runs on, the
HTTP/2 user's calibration, the summary's protocol columns and the http / tls factor pairs.

Nothing here starts a server (tests/test_protocol_runs.py runs them for real)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from harness import schema
from harness.loadgen.link import Link, requests_per_connection
from harness.loadgen.stages import read_go, write_go
from harness.results.factors import classify, differs
from harness.results.summary import RunContext, cell_client, cell_protocol
from harness.run.calibration import h2_client, h2_target
from harness.run.plan import RunOptions, build_plan, served_cells
from harness.run.profiles import PROFILES
from harness.run.scenarios import Scenario
from harness.run.session import h2_calibration
from harness.schema import Cell, CellRecord
from harness.units import UsageError
from targets.registry import TARGETS


@pytest.mark.parametrize(
    ("text", "every"),
    [("keep-alive", None), ("close", 1), ("every 1", 1), ("every 10", 10), (" Every  3 ", 3)],
)
def test_connection_policies(text: str, every: int | None) -> None:
    assert requests_per_connection(text) == every


@pytest.mark.parametrize("text", ["sometimes", "every", "every 0", "every -2", "", 5, None])
def test_a_bad_connection_policy_names_what_is_accepted(text: object) -> None:
    with pytest.raises(ValueError, match=r"keep-alive.*close.*every N"):
        requests_per_connection(text)


def test_a_link_travels_through_the_go_file(tmp_path: Path) -> None:
    ca = trustme.CA().cert_pem.bytes().decode()
    link = Link(http="2", ca_pem=ca, connection="every 5", streams=8)
    write_go(tmp_path, "https://127.0.0.1:1", link.to_dict())
    go = read_go(str(tmp_path))
    assert go is not None and go["host"] == "https://127.0.0.1:1"
    back = Link.from_dict(go["link"])
    assert back == link and back.tls and back.every == 5
    context = back.ssl_context()
    assert context is not None and context.get_ca_certs()  # trusts the run's CA only
    assert Link.from_dict(None) == Link() and Link().ssl_context() is None
    write_go(tmp_path, None, link.to_dict())  # a skipped stage carries no link
    assert read_go(str(tmp_path)) == {"skip": True}


def _scenario(name: str, **fields: object) -> Scenario:
    base = Scenario(name=name, path=Path(f"/nowhere/{name}.py"), description=name,
                    user_classes=("U",))  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


def _cells(scenario: str, targets: list[str]) -> list[Cell]:
    return [
        Cell(scenario, t, "closed", 10, None, 1, 1.0, 0.0, None) for t in targets
    ]  # fmt: skip


def test_http2_only_targets_are_left_to_the_http2_scenarios() -> None:
    scenarios = {
        "health": _scenario("health"),
        "h2": _scenario("h2", http=("1.1", "2"), streams=8),
    }
    names = ["fastapi-hypercorn", "fastapi-granian-h2c", "fastapi-granian-h2"]
    cells = _cells("health", names) + _cells("h2", names)
    kept, notes = served_cells(cells, scenarios, TARGETS)
    assert [(c.scenario, c.target) for c in kept] == [
        ("health", "fastapi-hypercorn"),
        ("h2", "fastapi-hypercorn"),
        ("h2", "fastapi-granian-h2c"),
        ("h2", "fastapi-granian-h2"),
    ]
    assert notes == [
        "scenario health has users speaking HTTP/1.1, not the HTTP/2 of fastapi-granian-h2c, "
        "fastapi-granian-h2: left out"
    ]
    with pytest.raises(UsageError, match="not the HTTP/2 of fastapi-granian-h2c"):
        served_cells(_cells("health", ["fastapi-granian-h2c"]), scenarios, TARGETS)


def test_the_default_profile_leaves_h2_to_the_protocol_profile() -> None:
    scenarios = {n: _scenario(n) for n in ("health", "io", "h2")}
    default = build_plan(RunOptions("default"), PROFILES["default"], scenarios, list(TARGETS))
    assert {c.scenario for c in default} == {"health", "io"}
    protocol = build_plan(RunOptions("protocol"), PROFILES["protocol"], {
        **{n: _scenario(n) for n in ("health", "tls", "newconn", "newconn_tls")},
        "h2": _scenario("h2", http=("1.1", "2")),
    }, list(TARGETS))  # fmt: skip
    assert {c.scenario for c in protocol} == {"health", "tls", "newconn", "newconn_tls", "h2"}
    assert {c.target for c in protocol} >= {"fastapi-hypercorn-h2c", "fastapi-granian-h2"}
    only = build_plan(
        RunOptions("default", scenarios=("h2",)), PROFILES["default"], scenarios, list(TARGETS)
    )
    assert {c.scenario for c in only} == {"h2"}  # asked for by name: it runs


def test_the_http2_user_is_calibrated_with_the_runs_streams_on_an_h2c_target() -> None:
    scenarios = {"io": _scenario("io"), "h2": _scenario("h2", http=("1.1", "2"), streams=8)}
    records = [CellRecord(c) for c in _cells("io", ["fastapi-uvicorn"])]
    assert h2_calibration(records, scenarios) is None
    records += [CellRecord(c) for c in _cells("h2", ["fastapi-granian-h2"])]
    assert h2_calibration(records, scenarios) == 8
    client = h2_client(8)
    assert (client.users, client.streams, client.http) == (8, 8, "2")  # 64 requests in flight
    chosen = [TARGETS[n] for n in ("fastapi-hypercorn-h2", "fastapi-hypercorn-h2c",
                                   "fastapi-granian-h2c")]  # fmt: skip
    found = h2_target(chosen)
    assert found is not None and found.name == "fastapi-granian-h2c"  # no TLS, granian first
    assert h2_target([TARGETS["fastapi-hypercorn-h2"], TARGETS["fastapi-uvicorn"]]) is None


def test_protocol_and_client_from_the_request_types() -> None:
    def latency(*names: str) -> dict[str, object]:
        return {"by_name": {n: {} for n in names}}

    assert (cell_protocol(latency("GET /health")), cell_client(latency("GET /health"))) == (
        "http", "fasthttp"
    )  # fmt: skip
    assert (cell_protocol(latency("H2 /io?ms=50")), cell_client(latency("H2 /io"))) == (
        "h2", "httpx"
    )  # fmt: skip
    assert (cell_protocol(latency("H1 /io?ms=50")), cell_client(latency("H1 /io"))) == (
        "http", "httpx"
    )  # fmt: skip
    assert cell_protocol(latency("WS connect", "WS message")) == "ws"


def test_tls_and_connection_come_from_the_scenario_and_the_row() -> None:
    manifest = {"scenarios": {
        "tls": {"settings": {"tls": True}},
        "newconn": {"settings": {"connection": "close"}},
        "health": {"settings": {}},
    }}  # fmt: skip
    run = RunContext.of(manifest)  # type: ignore[arg-type]
    plain, row_tls = {"tls": False}, {"tls": True}
    assert run.link_figures("tls", plain) == {"tls": True, "connection": "keep-alive"}
    assert run.link_figures("newconn", plain) == {"tls": False, "connection": "close"}
    assert run.link_figures("health", row_tls) == {"tls": True, "connection": "keep-alive"}
    assert run.link_figures("gone", {}) == {"tls": False, "connection": "keep-alive"}


def test_the_http2_users_ceiling_judges_its_cells(tmp_path: Path) -> None:
    """A cell driven by the HTTP/2 user is judged against that user's ceiling, and its users
    times streams are the requests in flight for the users ceiling."""
    from harness.results.summary import summary_row

    run_dir = tmp_path
    cell_id = "h2__fastapi-granian-h2c__c10__t1"
    folder = run_dir / schema.RAW_DIR / cell_id
    folder.mkdir(parents=True)
    (folder / schema.LATENCY_FILE).write_text(json.dumps({
        "complete": True, "requests": 3000, "failures": 0, "successes": 3000,
        "duration_s": 2.0, "by_name": {"H2 /io?ms=50": {"requests": 3000}},
    }))  # fmt: skip
    manifest = {
        "calibration": {"rps": 5000.0, "h2": {"rps": 1200.0, "streams": 8}},
        "scenarios": {"h2": {"settings": {"streams": 8, "http": ["1.1", "2"]}}},
        "targets": {"fastapi-granian-h2c": {"http": "2", "tls": False, "slots": None,
                                            "workers": 1}},
    }  # fmt: skip
    cell = {"cell_id": cell_id, "scenario": "h2", "target": "fastapi-granian-h2c",
            "load_model": "closed", "users": 10, "service_time_ms": 50.0,
            "status": "ok"}  # fmt: skip
    row = summary_row(run_dir, cell, RunContext.of(manifest))  # type: ignore[arg-type]
    assert row["client"] == "httpx" and row["protocol"] == "h2" and row["streams"] == 8
    assert row["generator_ceiling_rps"] == 1200.0
    assert row["rps"] == 1500.0
    assert "generator ceiling 1200" in (row["flags"] or "")  # 1500 >= 85% of 1200
    # 10 users x 8 streams = 80 requests in flight / 50 ms = 1600 rps
    assert "users 1,600" in (row["ceilings"] or "")


def _settings(name: str) -> dict[str, object]:
    return TARGETS[name].settings()


def test_http_and_tls_pairs() -> None:
    plain, h2c, h2 = (_settings(n) for n in ("fastapi-hypercorn", "fastapi-hypercorn-h2c",
                                              "fastapi-hypercorn-h2"))  # fmt: skip
    assert classify(plain, h2c) == "http"
    assert differs("http", plain, h2c) == "HTTP/1.1 → HTTP/2"
    assert classify(h2c, h2) == "tls"
    assert differs("tls", h2c, h2) == "plain TCP → TLS"
    assert classify(plain, h2) is None  # two things differ
    granian = _settings("fastapi-granian")
    assert classify(granian, _settings("fastapi-granian-h2c")) == "http"
    assert classify(plain, granian) == "server"  # both HTTP/1.1 without TLS
    old = {k: v for k, v in plain.items() if k not in ("http", "tls")}  # a run from before
    assert classify(old, plain) is None and classify(old, h2c) == "http"


def test_schema_7_appends_the_protocol_columns_last() -> None:
    assert schema.SCHEMA_VERSION == 7
    assert schema.SUMMARY_COLUMNS[-4:] == ("tls", "connection", "streams", "client")
    assert schema.SUMMARY_COLUMNS.index("tls") > schema.SUMMARY_COLUMNS.index("pool_total")


def test_tls_is_not_switched_on_for_a_server_gatebench_did_not_start() -> None:
    from harness.run.external import external_target

    scenarios = {"tls": _scenario("tls", tls=True), "health": _scenario("health")}
    plain = external_target("http://127.0.0.1:8000")
    cells = _cells("tls", ["external"]) + _cells("health", ["external"])
    kept, notes = served_cells(cells, scenarios, {"external": plain})
    assert [c.scenario for c in kept] == ["health"]
    assert notes == [
        "scenario tls asks for TLS, which external (not started by gatebench) does not "
        "serve: left out"
    ]
    served_tls = external_target("https://127.0.0.1:8443", ca_file="/tmp/ca.pem")
    assert served_tls.tls and not served_tls.tls_on_demand
    kept, notes = served_cells(cells, scenarios, {"external": served_tls})
    assert len(kept) == 2 and notes == []


def test_a_scenario_needing_a_service_leaves_out_targets_without_its_routes() -> None:
    scenarios = {"db": _scenario("db", needs="database")}
    names = ["fastapi-uvicorn", "django-gunicorn-sync", "starlette-uvicorn"]
    kept, notes = served_cells(_cells("db", names), scenarios, TARGETS)
    assert [c.target for c in kept] == ["fastapi-uvicorn"]
    assert notes == [
        "scenario db needs the database routes, which django-gunicorn-sync, starlette-uvicorn "
        "do not serve: left out"
    ]
    _, one = served_cells(_cells("db", names[:2]), scenarios, TARGETS)
    assert one == ["scenario db needs the database routes, which django-gunicorn-sync does "
                   "not serve: left out"]  # fmt: skip
