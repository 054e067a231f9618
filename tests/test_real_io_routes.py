"""The real-I/O routes (/db, /db/items, /upstream): the shared helpers, the target table's pools,
the failure kind the load generator reads, the verify gate's probes; and, with a real
PostgreSQL and a real upstream (harness.run.database, harness.run.upstream), the apps on their
servers: the same answers everywhere, a pool timeout, a small pool serialising, faults."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from harness.loadgen.recorder import FAILURE_HEADER, failure_kind
from harness.run import verify
from harness.run.plan import apply_overrides, parse_override
from harness.run.servers import serve
from harness.run.verify import REQUESTS, format_results, verify_targets
from harness.units import UsageError
from targets import common, fastapi_pitfalls, raw_asgi, raw_wsgi, starlette_app
from targets.fastapi_app import app as fastapi_app
from targets.flask_app import app as flask_app
from targets.registry import REAL_IO_APPS, TARGETS, Target

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def q(query: str) -> QueryParams:
    return QueryParams(query)


# --- targets.common: parameters, SQL, bodies, errors ----------------------------------------


def test_db_plan_checks_ms_and_answers_from_the_row() -> None:
    plan = common.plan_db(q(""))
    assert (plan.route, plan.value, plan.params) == ("db", 50, (0.05,))
    assert plan.sql == common.DB_SQL and "pg_sleep(%s)" in plan.sql
    assert common.plan_db(q("ms=0")).params == (0.0,)
    assert common.plan_db(q("ms=10000")).value == 10_000
    for raw, kind in (("-1", "out_of_range"), ("10001", "out_of_range"), ("abc", "invalid_integer"),
                      ("1.5", "invalid_integer"), ("nan", "not_finite")):  # fmt: skip
        with pytest.raises(common.HttpError) as caught:
            common.plan_db(q(f"ms={raw}"))
        assert (caught.value.status, caught.value.kind, caught.value.param) == (422, kind, "ms")
    reply = plan.reply((1, "item-1", 7919))
    assert reply == common.Reply(200, b'{"id":1,"name":"item-1","value":7919,"waited_ms":50}')


def test_item_plan_ids_and_their_errors() -> None:
    plan = common.plan_item(q("id=42"))
    assert (plan.route, plan.sql, plan.params) == ("items", common.ITEM_SQL, (42,))
    assert plan.reply((42, "item-42", 42 * 7919 % 10007)).body == common.encode(
        {"id": 42, "name": "item-42", "value": 42 * 7919 % 10007}
    )
    assert common.plan_item(q("id=10000")).value == 10_000
    assert common.plan_item(q("id=7&id=x")).value == 7  # the first value wins
    for raw in ("0", "-3", "10001", "%2B99999"):
        with pytest.raises(common.HttpError) as caught:
            common.plan_item(q(f"id={raw}"))
        assert (caught.value.status, caught.value.kind) == (404, "no_such_item")
    for query, kind in (("", "missing"), ("id=", "invalid_integer"), ("id=x", "invalid_integer"),
                        ("id=1.0", "invalid_integer"), ("id=inf", "not_finite"),
                        ("id=" + "1" * 65, "invalid_integer")):  # fmt: skip
        with pytest.raises(common.HttpError) as caught:
            common.plan_item(q(query))
        assert (caught.value.status, caught.value.kind, caught.value.param) == (422, kind, "id")
    with pytest.raises(common.HttpError) as caught:
        plan.reply(None)  # a row that is not there
    assert caught.value.status == 404


def test_upstream_plan_url_and_pass_through() -> None:
    assert common.plan_upstream(q("")) == 50
    assert common.plan_upstream(q("ms=0")) == 0
    with pytest.raises(common.HttpError):
        common.plan_upstream(q("ms=10001"))
    assert common.upstream_url("http://127.0.0.1:9/", 7) == "http://127.0.0.1:9/wait?ms=7"
    body = common.encode({"ms": 7, "upstream": "ok"})
    assert common.upstream_reply(200, body) == common.Reply(200, body)
    with pytest.raises(common.HttpError) as caught:
        common.upstream_reply(500, b"boom")
    reply = caught.value.reply()
    assert reply.status == 502
    assert reply.headers == {FAILURE_HEADER: "upstream unavailable"}


def test_failures_carry_their_kind_in_body_and_header() -> None:
    assert common.FAILURE_HEADER == FAILURE_HEADER  # the app and the load generator agree
    assert common.pool_timeout().reply() == common.Reply(
        503, b'{"error":"pool timeout"}', {"X-Gatebench-Failure": "pool timeout"}
    )
    assert common.database_unavailable().reply() == common.Reply(
        503, b'{"error":"database unavailable"}', {"X-Gatebench-Failure": "database unavailable"}
    )


def test_settings_from_the_environment() -> None:
    settings = common.real_io_settings({})
    assert settings == common.RealIoSettings(None, None, 10, 10.0)
    with pytest.raises(common.HttpError) as caught:
        settings.dsn()
    assert (caught.value.status, caught.value.kind) == (503, "not_configured")
    assert "GATEBENCH_DATABASE_DSN" in caught.value.detail
    with pytest.raises(common.HttpError, match="GATEBENCH_UPSTREAM_URL"):
        settings.upstream()
    given = common.real_io_settings({
        "GATEBENCH_DATABASE_DSN": "host=x", "GATEBENCH_UPSTREAM_URL": "http://h:1/",
        "GATEBENCH_POOL": "3", "GATEBENCH_POOL_TIMEOUT_S": "0.5",
    })  # fmt: skip
    assert given == common.RealIoSettings("host=x", "http://h:1", 3, 0.5)
    bad = (
        ("GATEBENCH_POOL", "0"),
        ("GATEBENCH_POOL", "x"),
        ("GATEBENCH_POOL_TIMEOUT_S", "-1"),
        ("GATEBENCH_POOL_TIMEOUT_S", "nan"),
    )
    for key, value in bad:
        env = {key: value}
        with pytest.raises(common.HttpError) as caught:
            common.real_io_settings(env)
        assert caught.value.status == 503


def test_404_and_405_know_the_real_io_routes() -> None:
    detail = json.loads(common.not_found().reply().body)["detail"]
    for path in common.REAL_IO_ROUTES:
        assert f"GET/HEAD {path}" in detail
    error = common.method_not_allowed("/db/items")
    assert (error.status, error.headers) == (405, {"Allow": "GET, HEAD"})


# --- the apps in process: the routes exist where they should, same bytes without a database --

REAL_IO_APP_CLIENTS = {
    "fastapi": fastapi_app,
    "fastapi-def": fastapi_pitfalls.sync_def_app,
    "fastapi-blocking": fastapi_pitfalls.blocking_app,
}
URLS = ["/db", "/db?ms=abc", "/db/items?id=0", "/db/items?id=3", "/db/items", "/upstream?ms=-1",
        "/upstream", "/nope"]  # fmt: skip


@pytest.fixture(scope="module")
def clients(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with contextlib.ExitStack() as stack:
        found: dict[str, Any] = {"flask": flask_app.test_client()}
        for name, app in REAL_IO_APP_CLIENTS.items():
            found[name] = stack.enter_context(TestClient(app))
        yield found


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    # No services in process: every route that would need one answers 503 not_configured.
    with pytest.MonkeyPatch.context() as patch:
        for name in (common.ENV_DATABASE_DSN, common.ENV_UPSTREAM_URL):
            patch.delenv(name, raising=False)
        yield patch


@pytest.mark.parametrize("url", URLS)
def test_real_io_apps_answer_identically_without_services(
    url: str, clients: dict[str, Any]
) -> None:
    reference = clients["flask"].get(url)
    for name in REAL_IO_APP_CLIENTS:
        answer = clients[name].get(url)
        assert (answer.status_code, answer.content) == (reference.status_code, reference.data)
        assert answer.headers["content-type"] == common.CONTENT_TYPE
    expected = {"/db": 503, "/db/items?id=3": 503, "/upstream": 503, "/db/items?id=0": 404,
                "/nope": 404}.get(url, 422)  # fmt: skip
    assert reference.status_code == expected


def test_apps_without_the_routes_answer_404() -> None:
    not_found = common.not_found().reply().body
    with TestClient(starlette_app.app) as starlette, TestClient(raw_asgi.app) as raw:
        for client in (starlette, raw):
            answer = client.get("/db?ms=0")
            assert (answer.status_code, answer.content) == (404, not_found)
    wsgi = raw_wsgi.respond({"PATH_INFO": "/upstream", "REQUEST_METHOD": "GET"})
    assert (wsgi.status, wsgi.body) == (404, not_found)


def test_real_io_routes_are_registered() -> None:
    flask_paths = {rule.rule for rule in flask_app.url_map.iter_rules()}
    assert set(common.REAL_IO_ROUTES) <= flask_paths
    for app in REAL_IO_APP_CLIENTS.values():
        paths = {getattr(route, "path", "") for route in app.routes}
        assert set(common.REAL_IO_ROUTES) <= paths


# --- the target table -------------------------------------------------------------------------


def test_pools_follow_the_contract() -> None:
    pools = {name: target.pool for name, target in TARGETS.items() if target.serves_real_io}
    assert pools["flask-gunicorn-sync"] == 1
    assert pools["flask-gunicorn-gthread"] == 8
    assert pools["fastapi-uvicorn"] == 10
    assert pools["fastapi-uvicorn-workers"] == pools["fastapi-gunicorn-uvicorn"] == 10
    assert pools["fastapi-uvicorn-blocking"] == 10
    assert pools["fastapi-uvicorn-def"] == 40
    small = TARGETS["flask-gunicorn-gthread-smallpool"]
    assert (small.worker_class, small.workers, small.threads, small.pool) == ("gthread", 4, 8, 2)
    assert (small.slots, small.pool_total) == (32, 8)
    for target in TARGETS.values():
        assert target.serves_real_io == (target.app in REAL_IO_APPS)
        if target.concurrency in ("process", "threads") and target.serves_real_io:
            assert target.pool_total is not None and target.slots is not None
            assert target.pool_total <= target.slots  # a pool never beyond the slots
    assert TARGETS["django-gunicorn-sync"].pool is None
    assert TARGETS["fastapi-uvicorn"].settings()["pool"] == 10
    assert TARGETS["starlette-uvicorn"].settings()["pool"] is None


def test_pool_override() -> None:
    base = TARGETS["fastapi-uvicorn"]
    changed = base.with_settings(pool=100)
    assert changed.pool == 100 and "pool 100 per worker" in changed.description
    assert base.with_settings(pool=10) is base
    with pytest.raises(ValueError, match="no pool"):
        TARGETS["starlette-uvicorn"].with_settings(pool=3)
    with pytest.raises(ValueError, match="at least 1"):
        base.with_settings(pool=0)
    assert parse_override("fastapi-uvicorn.pool=100") == ("fastapi-uvicorn", "pool", 100)
    table = apply_overrides(TARGETS, (("fastapi-uvicorn", "pool", 100),))
    assert table["fastapi-uvicorn"].pool == 100
    with pytest.raises(UsageError, match="no pool"):
        apply_overrides(TARGETS, (("rawasgi-uvicorn", "pool", 2),))
    with pytest.raises(ValueError, match="at least 1"):
        replace(base, pool=0)


def test_environment_of_a_target() -> None:
    gthread = TARGETS["flask-gunicorn-gthread"]
    assert gthread.environment("host=h port=1", "http://127.0.0.1:2/") == {
        "GATEBENCH_POOL": "8",
        "GATEBENCH_DATABASE_DSN": "host=h port=1",
        "GATEBENCH_UPSTREAM_URL": "http://127.0.0.1:2",
    }
    assert gthread.environment() == {"GATEBENCH_POOL": "8"}
    assert gthread.environment("", "") == {"GATEBENCH_POOL": "8"}
    assert TARGETS["django-uvicorn"].environment("host=h", "http://x:1") == {}


# --- the load generator's failure kind --------------------------------------------------------


def test_failure_kind_reads_the_failure_header() -> None:
    class Headers(dict[str, Any]):  # case-insensitive like requests' and geventhttpclient's
        def get(self, key: str, default: Any = None) -> Any:
            return super().get(key.lower(), default)

    def response(status: int, headers: Any) -> SimpleNamespace:
        return SimpleNamespace(status_code=status, headers=headers)

    named = Headers({"x-gatebench-failure": "pool timeout"})
    assert failure_kind(Exception("503"), response(503, named)) == "pool timeout"
    assert failure_kind(Exception(), response(503, {"x-gatebench-failure": "pool timeout"})) == (
        "pool timeout"
    )
    listed = Headers({"x-gatebench-failure": ["database unavailable", "other"]})
    assert failure_kind(Exception(), response(503, listed)) == "database unavailable"
    assert failure_kind(Exception(), response(503, Headers())) == "HTTP 503"
    assert failure_kind(Exception(), response(503, Headers({"x-gatebench-failure": " "}))) == (
        "HTTP 503"
    )
    assert failure_kind(Exception(), response(503, None)) == "HTTP 503"
    assert failure_kind(None, response(200, named)) is None  # a success stays a success
    assert failure_kind(TimeoutError(), None) == "TimeoutError"


# --- the verify gate's real-I/O probes, without servers ---------------------------------------


def test_real_io_probes_only_for_targets_and_services_that_have_them() -> None:
    fastapi, starlette = TARGETS["fastapi-uvicorn"], TARGETS["starlette-uvicorn"]
    both = fastapi.environment("host=h", "http://u:1")
    db_only = fastapi.environment("host=h", None)
    assert verify.real_io_requests(starlette, both) == []
    assert verify.real_io_requests(fastapi, {}) == []
    paths = [path for _, path, _ in verify.real_io_requests(fastapi, db_only)]
    assert paths and all(path.startswith("/db") for path in paths)
    paths = [path for _, path, _ in verify.real_io_requests(fastapi, both)]
    assert any(path.startswith("/upstream") for path in paths)
    mapping = {"database_dsn": "host=h", "upstream_url": ""}
    assert verify.server_environment(fastapi, mapping) == db_only
    assert verify.server_environment(fastapi, lambda t: t.environment("host=h")) == db_only
    assert verify.server_environment(fastapi, None) == {}


def test_verify_compares_real_io_answers_among_the_targets_that_serve_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = TARGETS["fastapi-uvicorn"]
    first, second = replace(base, name="first"), replace(base, name="second")
    plain = TARGETS["starlette-uvicorn"]
    envs: dict[str, dict[str, str] | None] = {}

    @contextlib.contextmanager
    def fake_serve(
        target: Target, log_path: Path, cpus: Any, background_stop: bool = False,
        env: dict[str, str] | None = None,
    ) -> Iterator[SimpleNamespace]:  # fmt: skip
        envs[target.name] = env
        yield SimpleNamespace(url=f"http://{target.name}", log_path=log_path)

    good = [(verify.label(r), 200, common.CONTENT_TYPE, b"{}") for r in REQUESTS]

    def fake_real_io(url: str, requests: list[verify.Request]) -> tuple[list[Any], float]:
        expected = verify.real_io_expected(requests)
        answers = [(verify.label(r), expected[verify.label(r)], common.CONTENT_TYPE, b"{}")
                   for r in requests]  # fmt: skip
        if url == "http://second":
            answers[0] = (answers[0][0], 200, common.CONTENT_TYPE, b'{"x":1}')
        return answers, 50.0 if url == "http://first" else 80.0

    monkeypatch.setattr(verify, "serve", fake_serve)
    monkeypatch.setattr(verify, "check_server", lambda url: (good, 50.0, 1.0))
    monkeypatch.setattr(verify, "check_real_io", fake_real_io)
    monkeypatch.setattr(verify, "expectation_problems", lambda answers, expected=None: [])
    environment = {"database_dsn": "host=h", "upstream_url": "http://u:1"}
    results = verify_targets([plain, first, second], tmp_path, None, environment=environment)
    assert envs == {"starlette-uvicorn": None, "first": base.environment("host=h", "http://u:1"),
                    "second": base.environment("host=h", "http://u:1")}  # fmt: skip
    assert results["starlette-uvicorn"].passed
    assert results["starlette-uvicorn"].requests == len(REQUESTS)
    assert results["first"].passed, format_results(results)
    assert results["first"].checked == results["first"].requests > len(REQUESTS)
    problems = results["second"].problems
    assert problems[0].startswith("GET /db?ms=0: body ") and "(reference first)" in problems[0]
    assert problems[-1].startswith("/db?ms=50 waited 80.0 ms")
    assert "/db?ms=50 waits 50.0 ms" in format_results(results)
    # Without services nothing changes: no env, no real-I/O probe.
    envs.clear()
    results = verify_targets([first], tmp_path, None)
    assert envs == {"first": None} and results["first"].requests == len(REQUESTS)


# --- real PostgreSQL, real upstream, real servers ---------------------------------------------


@dataclass(frozen=True)
class Services:
    dsn: str
    url: str


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    from harness.run.database import database
    from harness.run.upstream import upstream

    logs = tmp_path_factory.mktemp("services")
    with database(logs / "database.log") as db, upstream(logs / "upstream.log") as up:
        yield Services(db.dsn, up.url)


def get(url: str, path: str, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names lower-cased) and body of one GET on a new connection."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        headers = {key.lower(): value for key, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def concurrently(
    url: str, path: str, count: int
) -> tuple[list[tuple[int, dict[str, str], bytes]], float]:
    """``count`` requests at once (a barrier starts them together); answers and wall time."""
    barrier = threading.Barrier(count + 1)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        answer = get(url, path)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return answers, time.perf_counter() - started


def environment(target: Target, services: Services, **extra: str) -> dict[str, str]:
    return {**target.environment(services.dsn, services.url), **extra}


def warm(url: str, pool: int) -> None:
    """Every pooled connection open (they open in the background at the first request)."""
    concurrently(url, "/db?ms=0", pool)


E2E_TARGETS = ["flask-gunicorn-gthread", "flask-gunicorn-sync", "flask-gunicorn-gevent",
               "fastapi-uvicorn", "fastapi-uvicorn-def", "fastapi-uvicorn-blocking",
               "starlette-uvicorn"]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.solo
def test_verify_gate_passes_every_real_io_target(services: Services, tmp_path: Path) -> None:
    targets = [TARGETS[name] for name in E2E_TARGETS]
    environment = {"database_dsn": services.dsn, "upstream_url": services.url}
    results = verify_targets(targets, tmp_path, None, environment=environment)
    text = format_results(results)
    for name, result in results.items():
        assert result.passed, text
        assert result.checked == result.requests
        if TARGETS[name].serves_real_io:
            assert result.requests > len(REQUESTS)
            assert result.db_ms is not None and 45 <= result.db_ms <= 55, text
        else:
            assert result.requests == len(REQUESTS) and result.db_ms is None


@pytest.mark.e2e
def test_real_answers_are_the_same_bytes_on_every_app(services: Services, tmp_path: Path) -> None:
    paths = ["/db?ms=0", "/db?ms=5", "/db/items?id=42", "/db/items?id=10000", "/db/items?id=0",
             "/upstream?ms=0", "/upstream?ms=3", "/upstream?ms=x", "/db?ms=99999"]  # fmt: skip
    seen: dict[str, dict[str, tuple[int, bytes]]] = {}
    for name in ("flask-gunicorn-gthread", "fastapi-uvicorn", "fastapi-uvicorn-blocking"):
        target = TARGETS[name].with_settings(workers=1)
        with serve(target, tmp_path / f"{name}.log", env=environment(target, services)) as server:
            seen[name] = {}
            for path in paths:
                status, headers, body = get(server.url, path)
                assert headers["content-type"] == common.CONTENT_TYPE
                seen[name][path] = (status, body)
    reference = seen["flask-gunicorn-gthread"]
    for answers in seen.values():
        assert answers == reference
    assert reference["/db?ms=5"] == (
        200, b'{"id":1,"name":"item-1","value":7919,"waited_ms":5}'
    )  # fmt: skip
    assert reference["/db/items?id=42"] == (
        200, common.encode({"id": 42, "name": "item-42", "value": 42 * 7919 % 10007})
    )  # fmt: skip
    assert reference["/db/items?id=0"][0] == 404
    assert reference["/upstream?ms=3"] == (200, common.encode({"ms": 3, "upstream": "ok"}))
    assert reference["/upstream?ms=x"][0] == 422


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["flask-gunicorn-gthread", "fastapi-uvicorn"])
def test_pool_timeout_is_a_503_named_by_its_header(
    name: str, services: Services, tmp_path: Path
) -> None:
    target = TARGETS[name].with_settings(workers=1, pool=1)
    env = environment(target, services, GATEBENCH_POOL_TIMEOUT_S="0.5")
    with serve(target, tmp_path / "server.log", env=env) as server:
        warm(server.url, 1)
        answers, _ = concurrently(server.url, "/db?ms=1000", 2)
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200, 503]
    _, headers, body = next(a for a in answers if a[0] == 503)
    assert headers[FAILURE_HEADER.lower()] == "pool timeout"
    assert body == b'{"error":"pool timeout"}'


@pytest.mark.e2e
@pytest.mark.solo
@pytest.mark.parametrize("name", ["flask-gunicorn-gthread", "fastapi-uvicorn"])
def test_a_pool_of_two_serialises(name: str, services: Services, tmp_path: Path) -> None:
    target = TARGETS[name].with_settings(workers=1, pool=2)
    with serve(target, tmp_path / "server.log", env=environment(target, services)) as server:
        warm(server.url, 2)
        answers, elapsed = concurrently(server.url, "/db?ms=200", 4)
        assert [status for status, _, _ in answers] == [200] * 4
        assert elapsed >= 0.35  # two rounds of 200 ms: 4 queries, 2 connections
        wide = target.with_settings(pool=4)
    # With as many connections as requests they overlap: one round.
    with serve(wide, tmp_path / "wide.log", env=environment(wide, services)) as server:
        warm(server.url, 4)
        answers, elapsed = concurrently(server.url, "/db?ms=200", 4)
        assert [status for status, _, _ in answers] == [200] * 4
        assert elapsed < 0.35


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["flask-gunicorn-gthread", "fastapi-uvicorn-def",
                                  "fastapi-uvicorn"])  # fmt: skip
def test_services_down_are_named_failures(name: str, tmp_path: Path) -> None:
    port = closed_port()
    target = TARGETS[name].with_settings(workers=1)
    env = {
        **target.environment(f"host=127.0.0.1 port={port} dbname=x user=x connect_timeout=1",
                             f"http://127.0.0.1:{port}"),
        common.ENV_POOL_TIMEOUT_S: "0.5",
    }  # fmt: skip
    with serve(target, tmp_path / "server.log", env=env) as server:
        status, headers, body = get(server.url, "/db?ms=0")
        assert (status, body) == (503, b'{"error":"database unavailable"}')
        assert headers[FAILURE_HEADER.lower()] == "database unavailable"
        status, headers, body = get(server.url, "/upstream?ms=0")
        assert (status, body) == (502, b'{"error":"upstream unavailable"}')
        assert headers[FAILURE_HEADER.lower()] == "upstream unavailable"
        assert get(server.url, "/health")[0] == 200  # the server itself is fine
