"""The long-lived routes (``targets.streams``): SSE, WebSocket and background, on Flask and FastAPI.

In-process first: werkzeug's client for Flask and Starlette's TestClient for FastAPI give
the same status, headers and bytes for /sse (with the ``sent`` times masked) and
/background; FastAPI's WebSocket is driven by the TestClient. werkzeug's client cannot
speak WebSocket, so Flask's /ws is checked against real servers (``e2e``): gunicorn gthread
and uvicorn, with the ``websockets`` client, which also times the SSE and ticker intervals.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import re
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.sync.client import connect

import targets.fastapi_app as fastapi_module
import targets.flask_app as flask_module
from harness.loadgen.parse import message_latency_ms
from harness.run.servers import RunningServer, serve
from targets import common, streams
from targets.fastapi_app import app as fastapi_app
from targets.flask_app import app as flask_app
from targets.registry import TARGETS

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

SENT = re.compile(rb'"sent":[0-9.e+-]+')


@pytest.fixture(scope="module")
def flask_client() -> FlaskClient:
    return flask_app.test_client()


@pytest.fixture(scope="module")
def fastapi_client() -> Iterator[TestClient]:
    with TestClient(fastapi_app) as client:
        yield client


def both(
    flask_client: FlaskClient, fastapi_client: TestClient, method: str, url: str
) -> tuple[tuple[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]:
    """(status, headers with lower-case names, body) from Flask, then from FastAPI."""
    flask = flask_client.open(url, method=method, buffered=True)
    fastapi = fastapi_client.request(method, url)
    return (
        (flask.status_code, {k.lower(): v for k, v in flask.headers.items()}, flask.data),
        (fastapi.status_code, dict(fastapi.headers.items()), fastapi.content),
    )


def parse_sse(body: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(id, data) per event; fails unless every event is exactly ``id: n\\ndata: {...}``."""
    assert body.endswith(b"\n\n")
    events = []
    for block in body[:-2].split(b"\n\n"):
        id_line, data_line = block.split(b"\n")
        assert id_line.startswith(b"id: ") and data_line.startswith(b"data: ")
        events.append((int(id_line[4:]), json.loads(data_line[6:])))
    return events


# --- /sse ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/sse?events=4&interval_ms=5", "/sse?events=1&interval_ms=0"])
def test_sse_streams_the_same_events(
    url: str, flask_client: FlaskClient, fastapi_client: TestClient
) -> None:
    flask, fastapi = both(flask_client, fastapi_client, "GET", url)
    assert flask[0] == fastapi[0] == 200
    assert flask[1] == fastapi[1] == {k.lower(): v for k, v in streams.SSE_HEADERS.items()}
    assert SENT.sub(b'"sent":0', flask[2]) == SENT.sub(b'"sent":0', fastapi[2])
    count = int(urllib.parse.parse_qs(url.split("?")[1])["events"][0])
    for body in (flask[2], fastapi[2]):
        events = parse_sse(body)
        assert [seq for seq, _ in events] == list(range(1, count + 1))
        assert [data["seq"] for _, data in events] == list(range(1, count + 1))
        assert all(data["events"] == count for _, data in events)
        sent = [data["sent"] for _, data in events]
        assert sent == sorted(sent) and abs(sent[0] - time.time()) < 60


def test_sse_default_is_ten_events() -> None:
    assert streams.plan_sse(QueryParams("")) == streams.Schedule(10, 0.1)


def test_sse_head_sends_headers_only(flask_client: FlaskClient, fastapi_client: TestClient) -> None:
    flask, fastapi = both(flask_client, fastapi_client, "HEAD", "/sse?events=3&interval_ms=1000")
    assert flask == fastapi
    assert flask[0] == 200 and flask[2] == b""


@pytest.mark.parametrize(
    ("method", "url", "status", "kind"),
    [("GET", "/sse?events=0", 422, "out_of_range"),
     ("GET", "/sse?events=10001", 422, "out_of_range"),
     ("GET", "/sse?events=1.5", 422, "invalid_integer"),
     ("GET", "/sse?interval_ms=-1", 422, "out_of_range"),
     ("GET", "/sse?interval_ms=60001", 422, "out_of_range"),
     ("GET", "/sse?interval_ms=soon", 422, "invalid_integer"),
     ("POST", "/sse", 405, "method_not_allowed"),
     ("POST", "/background?ms=-1", 422, "out_of_range"),
     ("POST", "/background?ms=30000.5", 422, "out_of_range"),
     ("POST", "/background?ms=nan", 422, "not_finite"),
     ("POST", "/background?ms=x", 422, "invalid_number"),
     ("GET", "/background", 405, "method_not_allowed"),
     ("GET", "/ws", 426, "upgrade_required"),
     ("POST", "/ws?count=1", 426, "upgrade_required")],
)  # fmt: skip
def test_refusals_are_the_same_json_errors(
    method: str,
    url: str,
    status: int,
    kind: str,
    flask_client: FlaskClient,
    fastapi_client: TestClient,
) -> None:
    flask, fastapi = both(flask_client, fastapi_client, method, url)
    assert flask == fastapi
    assert flask[0] == status
    assert flask[1]["content-type"] == common.CONTENT_TYPE
    body = json.loads(flask[2])
    assert set(body) == {"error", "param", "detail"} and body["error"] == kind
    if status == 405:
        assert flask[1]["allow"] == ", ".join(streams.STREAM_ROUTES[url.split("?")[0]])
    if status == 426:
        assert flask[1]["upgrade"] == "websocket"


def test_error_details_name_the_range(flask_client: FlaskClient) -> None:
    def detail(url: str) -> str:
        return str(json.loads(flask_client.get(url).data)["detail"])

    assert detail("/sse?events=0") == "events must be an integer from 1 to 10000; got '0'"
    assert detail("/sse?events=x") == "events must be an integer from 1 to 10000; got 'x'"
    assert detail("/sse?interval_ms=-1") == (
        "interval_ms must be an integer from 0 to 60000 (milliseconds); got '-1'"
    )


# --- /background ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/background", "/background?ms=0", "/background?ms=1.5"])
def test_background_answers_202_identically(
    url: str, flask_client: FlaskClient, fastapi_client: TestClient
) -> None:
    flask, fastapi = both(flask_client, fastapi_client, "POST", url)
    assert flask == fastapi
    assert flask[0] == 202
    ms = float(urllib.parse.parse_qs(url.partition("?")[2]).get("ms", ["100"])[0])
    assert json.loads(flask[2]) == {"route": "background", "ms": ms, "queued": True}


def test_background_work_runs_after_the_response(
    flask_client: FlaskClient, fastapi_client: TestClient
) -> None:
    # In-process clients return once the app is done, work included: both took the time.
    for ask in (lambda: flask_client.post("/background?ms=80", buffered=True),
                lambda: fastapi_client.post("/background?ms=80")):  # fmt: skip
        started = time.monotonic()
        assert ask().status_code == 202
        assert time.monotonic() - started >= 0.08


# --- /ws on FastAPI, in-process ---------------------------------------------------------------


def test_fastapi_ws_echoes_text_and_bytes(fastapi_client: TestClient) -> None:
    with fastapi_client.websocket_connect("/ws") as ws:
        for text in ("hello", "", "é" * 1000, '{"a":1}'):
            ws.send_text(text)
            assert ws.receive_text() == text
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_bytes() == b"\x00\xff"


def test_fastapi_ws_ticker(fastapi_client: TestClient) -> None:
    with fastapi_client.websocket_connect("/ws?ticker_ms=5&count=4") as ws:
        ticks = [json.loads(ws.receive_text()) for _ in range(4)]
        assert ws.receive() == {"type": "websocket.close", "code": 1000, "reason": ""}
    assert [tick["seq"] for tick in ticks] == [1, 2, 3, 4]
    assert set(ticks[0]) == {"seq", "sent"}
    sent = [tick["sent"] for tick in ticks]
    # The scheduled send times: exactly one interval apart, however late each was sent.
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([0.005] * 3, abs=1e-6)


BAD_WS = {
    "ticker_ms=0": "ticker_ms must be an integer from 1 to 60000 (milliseconds); got '0'",
    "ticker_ms=60001": "ticker_ms must be an integer from 1 to 60000 (milliseconds); got '60001'",
    "ticker_ms=fast": "ticker_ms must be an integer from 1 to 60000 (milliseconds); got 'fast'",
    "ticker_ms=5&count=0": "count must be an integer from 1 to 100000; got '0'",
    "count=100001": "count must be an integer from 1 to 100000; got '100001'",
    "count=" + "9" * 80: "count must be an integer from 1 to 100000; "
    "got a long value or one with other characters",
}


@pytest.mark.parametrize("query", BAD_WS)
def test_fastapi_ws_bad_params_close_1008(query: str, fastapi_client: TestClient) -> None:
    with (
        fastapi_client.websocket_connect(f"/ws?{query}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, BAD_WS[query])


# --- shared logic ---------------------------------------------------------------------------------


def test_plan_ws_modes() -> None:
    assert streams.plan_ws(QueryParams("")) is None
    assert streams.plan_ws(QueryParams("other=1")) is None
    assert streams.plan_ws(QueryParams("ticker_ms=20&count=3")) == streams.Schedule(3, 0.02)
    assert streams.plan_ws(QueryParams("count=3")) == streams.Schedule(3, 0.1)
    assert streams.plan_ws(QueryParams("ticker_ms=20")) == streams.Schedule(10, 0.02)


def test_close_reason_fits_a_close_frame() -> None:
    error = common.HttpError(422, "out_of_range", "x" * 300, "count")
    assert len(streams.close_reason(error).encode()) == streams.MAX_CLOSE_REASON_BYTES
    assert all(len(reason.encode()) <= 123 for reason in BAD_WS.values())


def test_schedule_does_not_drift() -> None:
    started = time.monotonic()
    for _seq, wait_s in streams.Schedule(5, 0.01).ticks():
        time.sleep(wait_s + 0.003)  # each send runs late; the next wait makes up for it
    assert time.monotonic() - started < 0.04 + 0.003 * 2 + 0.02


def test_sent_is_the_scheduled_send_time() -> None:
    before = time.time()
    items = list(streams.Schedule(4, 0.25).ticks())
    seqs = [seq for seq, _ in items]
    assert seqs == [1, 2, 3, 4] and all(isinstance(seq, streams.Tick) for seq in seqs)
    start = seqs[0].due
    assert before <= start <= time.time()
    assert [seq.due - start for seq in seqs] == pytest.approx([0, 0.25, 0.5, 0.75], abs=1e-9)
    # Nothing was waited for: the items' stamps are still their schedule, in the future.
    events = parse_sse(b"".join(streams.sse_event(seq, 4) for seq in seqs))
    assert [seq for seq, _ in events] == [1, 2, 3, 4]
    assert [data["sent"] for _, data in events] == pytest.approx([seq.due for seq in seqs])
    assert [data["seq"] for _, data in events] == [1, 2, 3, 4]
    assert json.loads(streams.tick(seqs[2])) == {"seq": 3, "sent": pytest.approx(seqs[2].due)}
    # A stamp given explicitly wins; a plain int seq is stamped now.
    assert json.loads(streams.tick(seqs[2], sent=5.0)) == {"seq": 3, "sent": 5.0}
    now = time.time()
    assert json.loads(streams.tick(7))["sent"] == pytest.approx(now, abs=1)


def test_an_item_sent_late_shows_as_message_latency() -> None:
    pause = 0.06
    latencies = []
    for seq, wait_s in streams.Schedule(3, 0.01).ticks():
        time.sleep(wait_s + (pause if seq == 2 else 0))  # the server stalls before item 2
        _, data = parse_sse(streams.sse_event(seq, 3))[0]
        latencies.append(message_latency_ms(time.time(), data["sent"]))
    assert latencies[0] < pause * 1000 / 2
    assert latencies[1] >= pause * 1000
    assert latencies[2] >= (pause - 0.01) * 1000  # due one interval later, sent with item 2


class StalledSleep:
    """Stands in for an app's ``time`` / ``asyncio`` module: the second wait also stalls."""

    def __init__(self, module: Any, pause_s: float, asynchronous: bool) -> None:
        self._module, self.pause_s, self.calls = module, pause_s, 0
        self.sleep = self._async_sleep if asynchronous else self._sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def _extra(self, seconds: float) -> float:
        self.calls += 1
        return seconds + (self.pause_s if self.calls == 2 else 0.0)

    def _sleep(self, seconds: float) -> None:
        time.sleep(self._extra(seconds))

    async def _async_sleep(self, seconds: float) -> None:
        await asyncio.sleep(self._extra(seconds))


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_a_stalled_server_shows_as_message_latency(
    app: str,
    monkeypatch: pytest.MonkeyPatch,
    flask_client: FlaskClient,
    fastapi_client: TestClient,
) -> None:
    pause = 0.1
    if app == "flask":
        monkeypatch.setattr(flask_module, "time", StalledSleep(time, pause, asynchronous=False))
        body = flask_client.get("/sse?events=3&interval_ms=10", buffered=True).data
    else:
        stalled = StalledSleep(asyncio, pause, asynchronous=True)
        monkeypatch.setattr(fastapi_module, "asyncio", stalled)
        body = fastapi_client.get("/sse?events=3&interval_ms=10").content
    received = time.time()
    sent = [data["sent"] for _, data in parse_sse(body)]
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([0.01] * 2, abs=1e-6)
    # Item 2 was due 10 ms after item 1 and went out ~100 ms late: at least that much latency.
    assert message_latency_ms(received, sent[1]) >= pause * 1000


def test_stream_routes_are_registered_on_both_apps() -> None:
    flask_rules = {rule.rule: rule for rule in flask_app.url_map.iter_rules()}
    fastapi_routes: dict[str, Any] = {
        getattr(route, "path", ""): route for route in fastapi_app.routes
    }
    for path, methods in streams.STREAM_ROUTES.items():
        if methods == ("WEBSOCKET",):
            assert flask_rules[path].websocket
            assert type(fastapi_routes[path]).__name__ == "APIWebSocketRoute"
            continue
        assert set(flask_rules[path].methods or ()) == set(methods)
        assert set(fastapi_routes[path].methods) == set(methods)
    assert not set(streams.STREAM_ROUTES) & set(common.ROUTES)


# --- real servers (e2e) ---------------------------------------------------------------------------

E2E_TARGETS = {
    "flask-gunicorn-gthread": TARGETS["flask-gunicorn-gthread"].with_settings(workers=1, threads=4),
    "fastapi-uvicorn": TARGETS["fastapi-uvicorn"],
}


@pytest.fixture(scope="module", params=list(E2E_TARGETS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log = Path(tmp_path_factory.mktemp("streams")) / f"{request.param}.log"
    with serve(E2E_TARGETS[request.param], log) as running:
        yield running


def ws_url(server: RunningServer, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/ws" + (f"?{query}" if query else "")


@pytest.mark.e2e
@pytest.mark.solo
def test_e2e_ws_echo(server: RunningServer) -> None:
    with connect(ws_url(server), open_timeout=5) as ws:
        for message in ("hello", "é" * 5000, '{"a":[1,2]}'):
            ws.send(message)
            assert ws.recv(timeout=5) == message
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"


@pytest.mark.e2e
@pytest.mark.solo
def test_e2e_ws_ticker(server: RunningServer) -> None:
    count, interval_ms = 8, 50
    with connect(ws_url(server, f"ticker_ms={interval_ms}&count={count}"), open_timeout=5) as ws:
        arrived: list[float] = []
        ticks: list[dict[str, Any]] = []
        for _ in range(count):
            ticks.append(json.loads(ws.recv(timeout=5)))
            arrived.append(time.monotonic())
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    assert [tick["seq"] for tick in ticks] == list(range(1, count + 1))
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrived)]
    assert all(interval_ms * 0.5 < gap < interval_ms * 3 for gap in gaps), gaps
    total_ms = (arrived[-1] - arrived[0]) * 1000
    assert (count - 1) * interval_ms * 0.9 < total_ms < (count - 1) * interval_ms * 1.5


@pytest.mark.e2e
@pytest.mark.solo
@pytest.mark.parametrize("query", ["ticker_ms=0", "count=100001"])
def test_e2e_ws_bad_params_close_1008(server: RunningServer, query: str) -> None:
    with (
        connect(ws_url(server, query), open_timeout=5) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, BAD_WS[query])


@pytest.mark.e2e
@pytest.mark.solo
def test_e2e_sse_spacing(server: RunningServer) -> None:
    count, interval_ms = 6, 80
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", f"/sse?events={count}&interval_ms={interval_ms}")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream"
        arrived: list[float] = []
        body = b""
        while len(arrived) < count:
            line = response.readline()  # decodes the chunks; returns as each line arrives
            assert line, f"stream ended after {len(arrived)} events"
            body += line
            if line.startswith(b"data: "):
                arrived.append(time.monotonic())
        body += response.read()  # the last blank line and the end of the chunked body
    finally:
        connection.close()
    events = [(seq, data["seq"]) for seq, data in parse_sse(body)]
    assert events == [(seq, seq) for seq in range(1, count + 1)]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrived)]
    assert all(interval_ms * 0.5 < gap < interval_ms * 3 for gap in gaps), gaps


@pytest.mark.e2e
@pytest.mark.solo
def test_e2e_background_answers_before_the_work(server: RunningServer) -> None:
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        started = time.monotonic()
        connection.request("POST", "/background?ms=1000")
        response = connection.getresponse()
        body = response.read()
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    assert response.status == 202
    assert json.loads(body) == {"route": "background", "ms": 1000.0, "queued": True}
    assert elapsed < 0.5
