"""Every target app answers every request with the same status, headers and bytes.

The apps: Flask, raw WSGI and Django (sync views) on WSGI; FastAPI, its two pitfall
variants, Starlette, raw ASGI and Django (async views) on ASGI. Each is driven in-process
(werkzeug's client for WSGI apps, Starlette's TestClient for ASGI apps) and compared with
the Flask app. Each case names the status (and error kind) it must get, so the apps cannot
pass by being wrong in the same way. Then come unit tests for ``targets.common``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import io
import json
import math
import random
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient
from starlette.datastructures import QueryParams
from werkzeug.datastructures import MultiDict
from werkzeug.test import Client as WsgiClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from targets import common, fastapi_pitfalls, raw_asgi, raw_wsgi, starlette_app, streams
from targets.django_app import urls as django_urls
from targets.django_app import urls_async as django_urls_async
from targets.django_app.asgi import application as django_asgi_app
from targets.django_app.wsgi import application as django_wsgi_app
from targets.fastapi_app import app as fastapi_app
from targets.flask_app import app as flask_app

with warnings.catch_warnings():
    # Starlette warns on import that it prefers httpx2 to httpx; the test client works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

MIB = common.MAX_BODY_BYTES


WSGI_APPS: dict[str, Callable[..., Iterable[bytes]]] = {
    "flask": flask_app,
    "raw-wsgi": raw_wsgi.app,
    "django-wsgi": django_wsgi_app,
}
ASGI_APPS: dict[str, Any] = {
    "fastapi": fastapi_app,
    "fastapi-def": fastapi_pitfalls.sync_def_app,
    "fastapi-blocking": fastapi_pitfalls.blocking_app,
    "starlette": starlette_app.app,
    "raw-asgi": raw_asgi.app,
    "django-asgi": django_asgi_app,
}
APPS = [*WSGI_APPS, *ASGI_APPS]
AnyClient = WsgiClient | TestClient


@dataclass(frozen=True)
class Case:
    method: str
    url: str
    status: int
    error: str | None = None  # the error kind a refusal must carry
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


CASES: dict[str, Case] = {
    "health": Case("GET", "/health", 200),
    "health-head": Case("HEAD", "/health", 200),
    "health-extra-param": Case("GET", "/health?x=1", 200),
    "io-zero": Case("GET", "/io?ms=0", 200),
    "io-fraction": Case("GET", "/io?ms=0.5", 200),
    "io-exponent": Case("GET", "/io?ms=1e-3", 200),
    "io-plus-sign": Case("GET", "/io?ms=%2B1", 200),
    "io-negative-zero": Case("GET", "/io?ms=-0", 200),
    "io-fixed": Case("GET", "/io?ms=0&dist=fixed", 200),
    "io-exp-zero": Case("GET", "/io?ms=0&dist=exp", 200),
    "io-exp-seeded": Case("GET", "/io?ms=5&dist=exp&seed=7", 200),
    "io-exp-max-seed": Case("GET", f"/io?ms=1&dist=exp&seed={common.MAX_SEED}", 200),
    "io-seed-ignored-when-fixed": Case("GET", "/io?ms=1&seed=3", 200),
    "io-first-value-wins": Case("GET", "/io?ms=0&ms=abc", 200),
    "io-first-value-bad": Case("GET", "/io?ms=abc&ms=0", 422, "invalid_number"),
    "io-unknown-param": Case("GET", "/io?ms=0&colour=red", 200),
    "io-head": Case("HEAD", "/io?ms=0", 200),
    "io-non-numeric": Case("GET", "/io?ms=abc", 422, "invalid_number"),
    "io-empty": Case("GET", "/io?ms=", 422, "invalid_number"),
    "io-hex": Case("GET", "/io?ms=0x10", 422, "invalid_number"),
    "io-underscore": Case("GET", "/io?ms=1_0", 422, "invalid_number"),
    "io-space": Case("GET", "/io?ms=+1", 422, "invalid_number"),  # "+" decodes to " "
    "io-too-long": Case("GET", "/io?ms=" + "0" * 65, 422, "invalid_number"),
    "io-bad-utf8": Case("GET", "/io?ms=%FF", 422, "invalid_number"),
    "io-non-ascii": Case("GET", "/io?ms=%E2%82%AC", 422, "invalid_number"),
    "io-negative": Case("GET", "/io?ms=-1", 422, "out_of_range"),
    "io-above-max": Case("GET", "/io?ms=10000.001", 422, "out_of_range"),
    "io-overflow": Case("GET", "/io?ms=1e999", 422, "out_of_range"),
    "io-nan": Case("GET", "/io?ms=nan", 422, "not_finite"),
    "io-inf": Case("GET", "/io?ms=inf", 422, "not_finite"),
    "io-minus-infinity": Case("GET", "/io?ms=-Infinity", 422, "not_finite"),
    "io-unknown-dist": Case("GET", "/io?ms=0&dist=gauss", 422, "invalid_choice"),
    "io-dist-case": Case("GET", "/io?ms=0&dist=EXP", 422, "invalid_choice"),
    "io-seed-negative": Case("GET", "/io?ms=0&dist=exp&seed=-1", 422, "out_of_range"),
    "io-seed-float": Case("GET", "/io?ms=0&dist=exp&seed=1.5", 422, "invalid_integer"),
    "io-seed-too-big": Case("GET", f"/io?ms=0&seed={common.MAX_SEED + 1}", 422, "out_of_range"),
    "stall-zero": Case("GET", "/stall?ms=0", 200),
    "stall-fraction": Case("GET", "/stall?ms=0.25&dist=exp", 200),  # dist is not a stall param
    "stall-above-max": Case("GET", "/stall?ms=30000.5", 422, "out_of_range"),
    "stall-negative": Case("GET", "/stall?ms=-5", 422, "out_of_range"),
    "stall-nan": Case("GET", "/stall?ms=NaN", 422, "not_finite"),
    "stall-non-numeric": Case("GET", "/stall?ms=soon", 422, "invalid_number"),
    "cpu-default": Case("GET", "/cpu", 200),
    "cpu-zero": Case("GET", "/cpu?work=0", 200),
    "cpu-one": Case("GET", "/cpu?work=1", 200),
    "cpu-max": Case("GET", f"/cpu?work={common.MAX_CPU_WORK}", 200),
    "cpu-head": Case("HEAD", "/cpu?work=1", 200),
    "cpu-above-max": Case("GET", f"/cpu?work={common.MAX_CPU_WORK + 1}", 422, "out_of_range"),
    "cpu-negative": Case("GET", "/cpu?work=-1", 422, "out_of_range"),
    "cpu-float": Case("GET", "/cpu?work=1.5", 422, "invalid_integer"),
    "cpu-exponent": Case("GET", "/cpu?work=1e3", 422, "invalid_integer"),
    "cpu-non-numeric": Case("GET", "/cpu?work=lots", 422, "invalid_integer"),
    "cpu-inf": Case("GET", "/cpu?work=inf", 422, "not_finite"),
    "json-default": Case("GET", "/json", 200),
    "json-zero": Case("GET", "/json?items=0", 200),
    "json-max": Case("GET", f"/json?items={common.MAX_JSON_ITEMS}", 200),
    "json-above-max": Case("GET", f"/json?items={common.MAX_JSON_ITEMS + 1}", 422, "out_of_range"),
    "json-negative": Case("GET", "/json?items=-5", 422, "out_of_range"),
    "json-non-numeric": Case("GET", "/json?items=x", 422, "invalid_integer"),
    "echo-object": Case("POST", "/echo", 200, body='{"z":"é","a":[1,2.5,{"b":null}]}'.encode()),
    "echo-scalar": Case("POST", "/echo", 200, body=b"5"),
    "echo-negative-zero": Case("POST", "/echo", 200, body=b"-0.0"),
    "echo-max-depth": Case("POST", "/echo", 200, body=nested(common.MAX_JSON_DEPTH)),
    "echo-exactly-1mib": Case("POST", "/echo", 200, body=b'"' + b"a" * (MIB - 2) + b'"'),
    "echo-json-header": Case(
        "POST", "/echo", 200, body=b"{}", headers={"Content-Type": "application/json"}
    ),
    "echo-empty": Case("POST", "/echo", 400, "invalid_json", body=b""),
    "echo-bad-json": Case("POST", "/echo", 400, "invalid_json", body=b'{"a":1'),
    "echo-nan": Case("POST", "/echo", 400, "invalid_json", body=b"[NaN]"),
    "echo-overflow": Case("POST", "/echo", 400, "invalid_json", body=b"[1e999]"),
    "echo-huge-int": Case("POST", "/echo", 400, "invalid_json", body=b"9" * 5000),
    "echo-not-utf8": Case("POST", "/echo", 400, "invalid_json", body=b'"\xff"'),
    "echo-too-deep": Case(
        "POST", "/echo", 400, "invalid_json", body=nested(common.MAX_JSON_DEPTH + 1)
    ),
    "echo-far-too-deep": Case("POST", "/echo", 400, "invalid_json", body=nested(50_000)),
    "echo-oversize": Case("POST", "/echo", 413, "body_too_large", body=b"1" + b" " * MIB),
    "root": Case("GET", "/", 404, "not_found"),
    "unknown": Case("GET", "/nope", 404, "not_found"),
    "unknown-post": Case("POST", "/nope", 404, "not_found"),
    "trailing-slash": Case("GET", "/health/", 404, "not_found"),
    "wrong-case": Case("GET", "/IO", 404, "not_found"),
    "docs": Case("GET", "/docs", 404, "not_found"),
    "post-health": Case("POST", "/health", 405, "method_not_allowed"),
    "put-io": Case("PUT", "/io?ms=0", 405, "method_not_allowed"),
    "delete-cpu": Case("DELETE", "/cpu", 405, "method_not_allowed"),
    "options-json": Case("OPTIONS", "/json", 405, "method_not_allowed"),
    "get-echo": Case("GET", "/echo", 405, "method_not_allowed"),
    "head-echo": Case("HEAD", "/echo", 405, "method_not_allowed"),
}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str | None
    content_length: str | None
    allow: str | None
    body: bytes


@pytest.fixture(scope="module")
def flask_client() -> FlaskClient:
    return flask_app.test_client()


@pytest.fixture(scope="module")
def clients(flask_client: FlaskClient) -> Iterator[dict[str, AnyClient]]:
    """One in-process client per app; the ASGI ones share one event loop each (``with``)."""
    with contextlib.ExitStack() as stack:
        found: dict[str, AnyClient] = {"flask": flask_client}
        found |= {name: WsgiClient(app) for name, app in WSGI_APPS.items() if name != "flask"}
        found |= {name: stack.enter_context(TestClient(app)) for name, app in ASGI_APPS.items()}
        yield found


def ask(client: AnyClient, case: Case) -> Answer:
    if isinstance(client, TestClient):
        response = client.request(case.method, case.url, content=case.body, headers=case.headers)
        return Answer(response.status_code, response.headers.get("Content-Type"),
                      response.headers.get("Content-Length"), response.headers.get("Allow"),
                      response.content)  # fmt: skip
    # buffered: the app's iterable is read and closed, as a server does.
    wsgi_response = client.open(
        case.url, method=case.method, data=case.body, headers=case.headers, buffered=True
    )
    headers, body = wsgi_response.headers, wsgi_response.data
    return Answer(wsgi_response.status_code, headers.get("Content-Type"),
                  headers.get("Content-Length"), headers.get("Allow"), body)  # fmt: skip


_flask_answers: dict[str, Answer] = {}


def flask_answer(flask_client: FlaskClient, name: str) -> Answer:
    """The reference answer, asked once per case (some cases cost a second of CPU)."""
    if name not in _flask_answers:
        _flask_answers[name] = ask(flask_client, CASES[name])
    return _flask_answers[name]


@pytest.mark.parametrize("app_name", APPS)
@pytest.mark.parametrize("case_name", CASES)
def test_apps_answer_identically(
    case_name: str, app_name: str, clients: dict[str, AnyClient], flask_client: FlaskClient
) -> None:
    case = CASES[case_name]
    answer = ask(clients[app_name], case)
    assert answer == flask_answer(flask_client, case_name)
    assert answer.status == case.status
    assert answer.content_type == common.CONTENT_TYPE
    if case.method == "HEAD":
        # No body, but the headers of the GET answer, Content-Length included.
        assert answer.body == b""
        get_answer = ask(clients[app_name], Case("GET", case.url, case.status))
        assert answer.content_length == str(len(get_answer.body))
        return
    assert answer.content_length == str(len(answer.body))
    body = json.loads(answer.body)
    if case.error is None:
        assert "error" not in body
    else:
        assert body["error"] == case.error
        assert set(body) == {"error", "param", "detail"}
    if case.status == 405:
        path = case.url.split("?")[0]
        assert answer.allow == ", ".join(common.ROUTES[path])


def test_error_bodies_name_the_parameter_and_its_range(flask_client: FlaskClient) -> None:
    body = json.loads(ask(flask_client, CASES["io-above-max"]).body)
    assert body == {
        "error": "out_of_range",
        "param": "ms",
        "detail": "ms must be a number from 0 to 10000 (milliseconds); got '10000.001'",
    }


def test_route_bodies(flask_client: FlaskClient) -> None:
    def body(name: str) -> object:
        return json.loads(ask(flask_client, CASES[name]).body)

    assert body("health") == {"status": "ok"}
    assert body("io-negative-zero") == {"route": "io", "ms": 0.0, "slept_ms": 0.0}
    assert body("io-first-value-wins") == {"route": "io", "ms": 0.0, "slept_ms": 0.0}
    assert body("stall-fraction") == {"route": "stall", "ms": 0.25}
    assert body("cpu-one") == {
        "route": "cpu",
        "work": 1,
        "digest": hashlib.sha256(b"gatebench").hexdigest(),
    }
    assert body("json-default") == {"route": "json", "count": 100, "items": common.json_items(100)}
    assert body("echo-object") == {"route": "echo", "echo": {"z": "é", "a": [1, 2.5, {"b": None}]}}
    # The default is a float like any given ms, so the body's type never varies.
    default_ms = ask(flask_client, Case("GET", "/io?dist=exp&seed=1&ms=0", 200)).body
    assert b'"ms":0.0' in default_ms


@pytest.mark.parametrize("app_name", APPS)
def test_seeded_exp_sleep_is_deterministic(app_name: str, clients: dict[str, AnyClient]) -> None:
    case = CASES["io-exp-seeded"]
    expected = round(common.draw_sleep_ms(5.0, "exp", random.Random(7)), 3)
    for _ in range(2):
        answer = ask(clients[app_name], case)
        assert json.loads(answer.body) == {"route": "io", "ms": 5.0, "slept_ms": expected}


def test_routes_match_the_shared_table() -> None:
    expected = {path: set(methods) for path, methods in common.ROUTES.items()}
    # The Flask and FastAPI apps also serve the stream routes (tests/test_streams.py), and
    # they and the pitfall apps the real-I/O routes (tests/test_real_io_routes.py).
    elsewhere = {**streams.STREAM_ROUTES, **common.REAL_IO_ROUTES}
    flask_routes = {
        rule.rule: set(rule.methods or ()) - {"OPTIONS"}
        for rule in flask_app.url_map.iter_rules()
        if rule.rule not in elsewhere
    }
    assert flask_routes == expected
    for app in (fastapi_app, fastapi_pitfalls.sync_def_app, fastapi_pitfalls.blocking_app,
                starlette_app.app):  # fmt: skip
        routes: list[Any] = [r for r in app.routes if getattr(r, "path", "") not in elsewhere]
        assert {route.path: set(route.methods) for route in routes} == expected
    # Django and the raw apps route by path only; their method checks read ROUTES itself.
    for urlconf in (django_urls, django_urls_async):
        assert {f"/{pattern.pattern}" for pattern in urlconf.urlpatterns} == set(expected)
    assert set(raw_wsgi.HANDLERS) == set(raw_asgi.HANDLERS) == set(expected)


def test_django_entry_points_serve_sync_and_async_views() -> None:
    # Django runs a sync view under ASGI in a thread, an async one under WSGI in a new
    # event loop per request: each entry point must get views of its own kind.
    sync = [inspect.iscoroutinefunction(p.callback) for p in django_urls.urlpatterns]
    asynchronous = [inspect.iscoroutinefunction(p.callback) for p in django_urls_async.urlpatterns]
    assert sync == [False] * len(common.ROUTES)
    assert asynchronous == [True] * len(common.ROUTES)


@pytest.mark.parametrize("app_name", APPS)
def test_io_really_sleeps(app_name: str, clients: dict[str, AnyClient]) -> None:
    case = Case("GET", "/io?ms=30", 200)
    started = time.perf_counter()
    answer = ask(clients[app_name], case)
    elapsed = time.perf_counter() - started
    assert answer.status == 200
    assert elapsed >= 0.030


@pytest.mark.parametrize("app_name", ASGI_APPS)
def test_how_waits_overlap_on_an_asgi_app(app_name: str, clients: dict[str, AnyClient]) -> None:
    # Three requests at once on one event loop: they overlap, except where the endpoint
    # blocks the loop with time.sleep (then they queue). `def` endpoints overlap in threads.
    case, count, wait_s = Case("GET", "/io?ms=150", 200), 3, 0.150
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: ask(clients[app_name], case), range(count)))
    elapsed = time.perf_counter() - started
    assert [answer.status for answer in answers] == [200] * count
    if app_name == "fastapi-blocking":
        assert elapsed >= count * wait_s
    else:
        assert elapsed < count * wait_s


def run_asgi(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[Any]:
    """The messages an ASGI app sends for one scope, without a server or client between."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_raw_asgi_sends_head_answers_without_a_body() -> None:
    # The test client drops HEAD bodies itself, so this looks at what the app sends.
    scope = {"type": "http", "method": "HEAD", "path": "/health", "query_string": b"",
             "headers": []}  # fmt: skip
    start, body = run_asgi(raw_asgi.app, scope, [{"type": "http.request", "body": b""}])
    assert start["status"] == 200
    assert (b"content-length", str(len(common.health().body)).encode()) in start["headers"]
    assert body == {"type": "http.response.body", "body": b""}


@pytest.mark.parametrize("app_name", ["raw-asgi", "django-asgi"])
def test_lifespan_is_answered(app_name: str) -> None:
    # Servers warn (granian) or fail (TestClient) when an app refuses lifespan.
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    assert run_asgi(ASGI_APPS[app_name], {"type": "lifespan"}, lifespan) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


def test_raw_asgi_refuses_websockets() -> None:
    sent = run_asgi(raw_asgi.app, {"type": "websocket", "path": "/io"}, [])
    assert [message["type"] for message in sent] == ["websocket.close"]


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[int, bytes]:
    """Run a WSGI app on this exact environ (the test client would rebuild it)."""
    app_iter, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), b"".join(app_iter)


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def chunked_environ(data: bytes) -> dict[str, Any]:
    environ = EnvironBuilder("/echo", method="POST", input_stream=io.BytesIO(data)).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True  # as gunicorn sets it for a chunked body
    return environ


@pytest.mark.parametrize("app_name", APPS)
@pytest.mark.parametrize(
    ("data", "status"), [(b"[" + b"1," * 1000 + b"1]", 200), (b"1" + b" " * MIB, 413)]
)
def test_chunked_body_without_length(
    data: bytes, status: int, app_name: str, clients: dict[str, AnyClient]
) -> None:
    # No Content-Length: the size check has to happen while reading.
    flask_status, flask_body = call_wsgi(flask_app, chunked_environ(data))
    assert flask_status == status
    if app_name in WSGI_APPS:
        assert call_wsgi(WSGI_APPS[app_name], chunked_environ(data)) == (status, flask_body)
        return
    client = clients[app_name]
    assert isinstance(client, TestClient)
    response = client.post("/echo", content=chunks(data))
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert (response.status_code, response.content) == (status, flask_body)


@pytest.mark.parametrize("app_name", [name for name in WSGI_APPS if name != "flask"])
@pytest.mark.parametrize(
    ("length", "terminated", "status"),
    [(None, False, 400),  # no length, no server-ended stream: read as empty, as werkzeug does
     ("5", False, 200),  # only Content-Length bytes are read: "[1,2]"
     ("abc", False, 400),  # a bad length counts as 0
     ("5", True, 400)],  # the server ends the stream: all of it is read, "[1,2]junk"
)  # fmt: skip
def test_wsgi_bodies_are_read_as_flask_reads_them(
    app_name: str, length: str | None, terminated: bool, status: int
) -> None:
    def environ() -> dict[str, Any]:
        built = EnvironBuilder("/echo", method="POST", input_stream=io.BytesIO(b"[1,2]junk"))
        env = built.get_environ()
        del env["CONTENT_LENGTH"]
        if length is not None:
            env["CONTENT_LENGTH"] = length
        if terminated:
            env["wsgi.input_terminated"] = True
        return env

    flask = call_wsgi(flask_app, environ())
    assert flask[0] == status
    assert call_wsgi(WSGI_APPS[app_name], environ()) == flask


def test_raw_wsgi_treats_a_short_body_as_a_disconnect() -> None:
    # The stream ends before Content-Length: werkzeug raises ClientDisconnected (a 400).
    def environ() -> dict[str, Any]:
        built = EnvironBuilder("/echo", method="POST", input_stream=io.BytesIO(b"[1]"))
        env = built.get_environ()
        env["CONTENT_LENGTH"] = "10"
        return env

    flask = call_wsgi(flask_app, environ())
    assert flask[0] == 400
    assert call_wsgi(raw_wsgi.app, environ()) == flask


@pytest.mark.parametrize("app_name", APPS)
def test_unhandled_exception_gives_the_same_500(
    app_name: str, monkeypatch: pytest.MonkeyPatch, flask_client: FlaskClient
) -> None:
    def broken(work: int) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(common, "cpu_digest", broken)
    case = Case("GET", "/cpu?work=1", 500)
    if app_name in ASGI_APPS:
        with TestClient(ASGI_APPS[app_name], raise_server_exceptions=False) as client:
            answer = ask(client, case)
    else:
        answer = ask(WsgiClient(WSGI_APPS[app_name]), case)
    flask_answer = ask(flask_client, case)
    assert answer == flask_answer
    assert flask_answer.status == 500
    assert json.loads(flask_answer.body)["error"] == "internal_error"


@pytest.mark.parametrize("app_name", APPS)
@pytest.mark.parametrize("path", ["//health", "///io", "/%2Fhealth", "/health//", "/io//x"])
def test_doubled_slashes_are_other_paths(
    path: str, app_name: str, clients: dict[str, AnyClient]
) -> None:
    # Werkzeug alone would serve "//health" as "/health" (it strips leading slashes).
    def environ() -> dict[str, Any]:
        built = EnvironBuilder("/", method="GET").get_environ()
        built["PATH_INFO"] = urllib.parse.unquote(path)  # as gunicorn passes it
        return built

    flask_status, flask_body = call_wsgi(flask_app, environ())
    assert flask_status == 404
    if app_name in WSGI_APPS:
        assert call_wsgi(WSGI_APPS[app_name], environ()) == (404, flask_body)
        return
    client = clients[app_name]
    assert isinstance(client, TestClient)
    response = client.get(f"http://testserver{path}")
    assert response.request.url.raw_path == path.encode()
    assert (response.status_code, response.content) == (404, flask_body)


# --- targets.common ----------------------------------------------------------------------


def test_encode_is_compact_sorted_and_ascii() -> None:
    assert common.encode({"b": 1, "a": [True, None, "é"]}) == b'{"a":[true,null,"\\u00e9"],"b":1}'
    with pytest.raises(ValueError):
        common.encode(math.nan)


def test_first_value_wins_in_both_query_types() -> None:
    assert common.first(QueryParams("ms=1&ms=2"), "ms") == "1"
    assert common.first(MultiDict([("ms", "1"), ("ms", "2")]), "ms") == "1"
    assert common.first(QueryParams("other=1"), "ms") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0.0), ("10000", 10000.0), ("-0", 0.0), ("+5", 5.0), ("1e3", 1000.0),
     (".5", 0.5), ("5.", 5.0), ("0" * 64, 0.0)],
)  # fmt: skip
def test_float_param_accepts(raw: str, expected: float) -> None:
    value = common.float_param(QueryParams({"ms": raw}), "ms", 50, common.MAX_IO_MS)
    assert value == expected
    assert math.copysign(1, value) == 1  # never -0.0


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("", "invalid_number"), ("abc", "invalid_number"), (" 1", "invalid_number"),
     ("1_0", "invalid_number"), ("٣", "invalid_number"), ("0" * 65, "invalid_number"),
     ("-0.001", "out_of_range"), ("10000.0001", "out_of_range"), ("1e400", "out_of_range"),
     ("nan", "not_finite"), ("-inf", "not_finite"), ("Infinity", "not_finite")],
)  # fmt: skip
def test_float_param_refuses(raw: str, kind: str) -> None:
    with pytest.raises(common.HttpError) as caught:
        common.float_param(QueryParams({"ms": raw}), "ms", 50, common.MAX_IO_MS)
    assert (caught.value.status, caught.value.kind, caught.value.param) == (422, kind, "ms")
    assert "from 0 to 10000" in caught.value.detail


def test_defaults_and_int_bounds() -> None:
    empty = QueryParams("")
    assert common.float_param(empty, "ms", 50, common.MAX_IO_MS) == 50.0
    assert isinstance(common.float_param(empty, "ms", 50, common.MAX_IO_MS), float)
    assert common.plan_stall(empty).sleep_s == 1.0
    assert common.int_param(QueryParams("work=1000000"), "work", 1, common.MAX_CPU_WORK) == 10**6
    for raw in ("1000001", "1.0", "-1"):
        with pytest.raises(common.HttpError):
            common.int_param(QueryParams({"work": raw}), "work", 1, common.MAX_CPU_WORK)


def test_stall_accepts_up_to_its_own_bound() -> None:
    assert common.plan_stall(QueryParams("ms=30000")).sleep_s == 30.0
    with pytest.raises(common.HttpError):
        common.plan_io(QueryParams("ms=30000"))


def test_cpu_digest_is_a_sha256_chain() -> None:
    value = b"gatebench"
    for _ in range(3):
        value = hashlib.sha256(value).digest()
    assert common.cpu_digest(3) == value.hex()
    assert common.cpu_digest(0) == b"gatebench".hex()
    assert common.cpu_digest(1000) == common.cpu_digest(1000)


def test_exp_draws_are_seeded_and_have_the_right_mean() -> None:
    first_draws = [common.draw_sleep_ms(50, "exp", random.Random(42)) for _ in range(3)]
    assert len(set(first_draws)) == 1
    rng = random.Random(12345)
    draws = [common.draw_sleep_ms(50, "exp", rng) for _ in range(20_000)]
    assert abs(sum(draws) / len(draws) - 50) < 50 * 0.03
    assert min(draws) >= 0


def test_exp_draws_are_capped() -> None:
    rng = random.Random(1)
    draws = [common.draw_sleep_ms(common.MAX_IO_MS, "exp", rng) for _ in range(2_000)]
    assert max(draws) == common.MAX_IO_MS


def test_fixed_and_unseeded_plans() -> None:
    assert common.draw_sleep_ms(12.5, "fixed", random.Random(1)) == 12.5
    plan = common.plan_io(QueryParams("ms=1.23456"))
    assert json.loads(plan.reply.body)["slept_ms"] == 1.235
    assert plan.sleep_s == pytest.approx(0.001235)
    unseeded = json.loads(common.plan_io(QueryParams("ms=5&dist=exp")).reply.body)
    assert 0 <= unseeded["slept_ms"] <= common.MAX_IO_MS


def test_json_items_are_deterministic() -> None:
    assert common.json_items(3) == [
        {"id": 0, "name": "item-0", "price": 0.0, "tags": ["a", "b"], "active": True},
        {"id": 1, "name": "item-1", "price": 1.25, "tags": ["a", "b"], "active": False},
        {"id": 2, "name": "item-2", "price": 2.5, "tags": ["a", "b"], "active": True},
    ]


def test_body_limits() -> None:
    common.check_declared_length(str(MIB))
    common.check_declared_length(None)
    common.check_declared_length("not a number")  # the server rejects it, not us
    with pytest.raises(common.HttpError) as caught:
        common.check_declared_length(str(MIB + 1))
    assert caught.value.status == 413
    common.check_body_size(MIB)
    with pytest.raises(common.HttpError):
        common.check_body_size(MIB + 1)


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"", "not valid JSON"), (b"\xff", "not UTF-8"), (b"[Infinity]", "not valid JSON"),
     (nested(common.MAX_JSON_DEPTH + 1), "deeper than"), (nested(10_000), "deeper than"),
     (b'{"a":' * 300 + b"1" + b"}" * 300, "deeper than")],
)  # fmt: skip
def test_echo_refuses(body: bytes, detail: str) -> None:
    with pytest.raises(common.HttpError) as caught:
        common.echo(body)
    assert (caught.value.status, caught.value.kind) == (400, "invalid_json")
    assert detail in caught.value.detail


def test_echo_accepts_wide_bodies_at_the_depth_limit() -> None:
    wide = b"[" + b"[1]," * 1000 + b"[1]]"  # many brackets, depth 2: walked, accepted
    assert json.loads(common.echo(wide).body)["echo"][0] == [1]
    assert common.echo(nested(common.MAX_JSON_DEPTH)).status == 200
