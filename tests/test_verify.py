"""The verify gate: comparison logic on canned answers, and real servers (e2e)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.run import verify
from harness.run.servers import ServerError
from harness.run.tls import Certificate, make_certificate
from harness.run.verify import (
    EXPECTED_STATUS,
    REQUESTS,
    Answer,
    VerifyResult,
    compare,
    expectation_problems,
    format_results,
    io_problem,
    label,
    shorten_pair,
    verify_targets,
)
from targets.registry import TARGETS, Target

JSON = "application/json"


def canned() -> list[Answer]:
    """A plausible correct answer to every request."""
    return [(label(r), EXPECTED_STATUS[label(r)], JSON, b'{"ok":true}') for r in REQUESTS]


def with_answer(
    answers: list[Answer],
    name: str,
    *,
    status: int | None = None,
    content_type: str | None = None,
    body: bytes | None = None,
) -> list[Answer]:
    """The answers with some fields of one request's answer changed."""
    return [
        (n, status or s, content_type or c, body or b) if n == name else (n, s, c, b)
        for n, s, c, b in answers
    ]


# --- the probe list -----------------------------------------------------------------------


def test_requests_have_unique_labels_and_expected_statuses() -> None:
    labels = [label(r) for r in REQUESTS]
    assert len(set(labels)) == len(labels) == len(EXPECTED_STATUS)
    assert EXPECTED_STATUS["GET /health"] == 200
    assert EXPECTED_STATUS["GET /io?ms=5&dist=exp&seed=7"] == 200
    assert EXPECTED_STATUS["GET /io?ms=abc"] == 422
    assert EXPECTED_STATUS["GET /json?items=0"] == 200
    assert EXPECTED_STATUS["POST /echo {JSON}"] == 200
    assert EXPECTED_STATUS["POST /echo {bad JSON}"] == 400
    assert EXPECTED_STATUS["GET /nope"] == 404
    assert EXPECTED_STATUS["POST /health"] == 405
    assert sorted(set(EXPECTED_STATUS.values())) == [200, 400, 404, 405, 422]


# --- comparison with the reference ---------------------------------------------------------


def test_identical_answers_have_no_problems() -> None:
    assert compare(canned(), canned(), "fastapi-uvicorn") == []
    assert expectation_problems(canned()) == []


def test_status_difference_names_request_field_and_both_values() -> None:
    mine = with_answer(canned(), "GET /io?ms=abc", status=400)
    assert compare(mine, canned(), "fastapi-uvicorn") == [
        "GET /io?ms=abc: status 400 vs 422 (reference fastapi-uvicorn)"
    ]


def test_content_type_difference() -> None:
    mine = with_answer(canned(), "GET /health", content_type="text/html; charset=utf-8")
    (problem,) = compare(mine, canned(), "ref")
    values = "'text/html; charset=utf-8' vs 'application/json'"
    assert problem == f"GET /health: content-type {values} (reference ref)"


def test_body_difference_is_shortened_around_the_first_difference() -> None:
    items = [{"id": i, "name": f"item-{i}"} for i in range(200)]
    ref_body = json.dumps({"items": items}).encode()
    items[150]["name"] = "changed"
    my_body = json.dumps({"items": items}).encode()
    ref = with_answer(canned(), "GET /json?items=3", body=ref_body)
    mine = with_answer(canned(), "GET /json?items=3", body=my_body)
    (problem,) = compare(mine, ref, "ref")
    assert problem.startswith("GET /json?items=3: body …")
    assert problem.endswith("(reference ref)")
    assert "changed" in problem and "item-150" in problem
    assert len(problem) < 200 < len(ref_body)


def test_shorten_pair_keeps_short_values_whole() -> None:
    assert shorten_pair(b'{"a":1}', b'{"a":2}') == ("b'{\"a\":1}'", "b'{\"a\":2}'")
    long_a, long_b = shorten_pair("x" * 500, "x" * 499 + "y")
    assert long_a.startswith("…") and long_b.endswith("y'")


def test_missing_reference_answer_is_a_problem() -> None:
    (problem,) = compare(canned(), canned()[1:], "ref")
    assert problem == "GET /health: the reference ref has no answer to compare"


def test_wrong_the_same_way_still_fails_on_expectations() -> None:
    wrong = with_answer(canned(), "GET /io?ms=-1", status=400)
    assert compare(wrong, wrong, "ref") == []
    assert expectation_problems(wrong) == ["GET /io?ms=-1: status 400, expected 422"]


def test_expectations_want_json_and_every_request() -> None:
    wrong = with_answer(canned(), "GET /nope", content_type="text/html")
    assert expectation_problems(wrong[:-1]) == [
        "GET /nope: content-type 'text/html', expected 'application/json'",
        "POST /health: not answered",
    ]


@pytest.mark.parametrize(("io_ms", "ok"), [(50.0, True), (45.0, True), (55.0, True),
                                           (44.9, False), (55.1, False), (0.4, False)])  # fmt: skip
def test_io_timing_tolerance(io_ms: float, ok: bool) -> None:
    assert (io_problem(io_ms) is None) == ok


def test_io_timing_message() -> None:
    assert (
        io_problem(61.24)
        == "/io?ms=50 waited 61.2 ms (median, beyond /io?ms=0), expected 50 ms ±10%"
    )


# --- verify_targets without servers ---------------------------------------------------------


def test_reference_is_the_first_target_that_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = TARGETS["fastapi-uvicorn"]
    broken, first, second = (replace(base, name=n) for n in ("broken", "first", "second"))
    by_url = {
        "http://first": (canned(), 50.5, 1.25),
        "http://second": (with_answer(canned(), "GET /io?ms=abc", status=400), 62.0, 2.0),
    }
    logs: list[Path] = []

    @contextlib.contextmanager
    def fake_serve(
        target: Target, log_path: Path, cpus: Sequence[int] | None, background_stop: bool = False
    ) -> Iterator[SimpleNamespace]:
        logs.append(log_path)
        if target.name == "broken":
            raise ServerError(f"target broken exited; see its log {log_path}")
        yield SimpleNamespace(url=f"http://{target.name}", log_path=log_path)

    monkeypatch.setattr(verify, "serve", fake_serve)
    monkeypatch.setattr(verify, "check_server", by_url.__getitem__)
    results = verify_targets([broken, first, second], tmp_path, None)
    assert logs == [tmp_path / f"verify__{n}.log" for n in ("broken", "first", "second")]
    assert list(results) == ["broken", "first", "second"]
    assert results["broken"].to_dict() == {
        "target": "broken", "passed": False, "io_ms": None, "io_overhead_ms": None,
        "io_expected_ms": 50.0, "checked": 0, "requests": len(REQUESTS), "db_ms": None,
        "problems": [f"target broken exited; see its log {logs[0]}"],
    }  # fmt: skip
    assert results["first"].passed and results["first"].checked == len(REQUESTS)
    assert results["first"].to_dict()["io_overhead_ms"] == 1.25
    assert results["second"].io_overhead_ms == 2.0
    assert results["second"].problems == [
        "GET /io?ms=abc: status 400 vs 422 (reference first)",
        "GET /io?ms=abc: status 400, expected 422",
        "/io?ms=50 waited 62.0 ms (median, beyond /io?ms=0), expected 50 ms ±10%",
    ]
    text = format_results(results)
    assert text.splitlines()[0].startswith("FAIL  broken ")
    assert "PASS  first   /io?ms=50 waits 50.5 ms" in text
    assert "(/io?ms=0 takes 1.2 ms)" in text
    assert "      - GET /io?ms=abc: status 400 vs 422 (reference first)" in text


def test_only_tls_rows_get_the_certificate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    served: dict[str, object] = {}
    asked: dict[str, dict[str, object]] = {}

    @contextlib.contextmanager
    def fake_serve(
        target: Target, log_path: Path, cpus: Sequence[int] | None, background_stop: bool = False,
        tls: Certificate | None = None,
    ) -> Iterator[SimpleNamespace]:  # fmt: skip
        served[target.name] = tls
        yield SimpleNamespace(url=f"http://{target.name}", log_path=log_path)

    def fake_check(url: str, **protocol: object) -> tuple[list[Answer], float, float]:
        asked[url.removeprefix("http://")] = protocol
        return canned(), 50.0, 1.0

    monkeypatch.setattr(verify, "serve", fake_serve)
    monkeypatch.setattr(verify, "check_server", fake_check)
    names = ["fastapi-uvicorn", "fastapi-hypercorn-h2c", "fastapi-granian-h2"]
    given = make_certificate(tmp_path / "given")
    results = verify_targets([TARGETS[n] for n in names], tmp_path / "logs", None, tls=given)
    assert all(r.passed for r in results.values()), format_results(results)
    assert served == {"fastapi-uvicorn": None, "fastapi-hypercorn-h2c": None,
                      "fastapi-granian-h2": given}  # fmt: skip
    assert asked == {
        "fastapi-uvicorn": {},  # plain HTTP/1.1: asked exactly as before
        "fastapi-hypercorn-h2c": {"http": "2", "ca_file": None},
        "fastapi-granian-h2": {"http": "2", "ca_file": given.ca_file},
    }
    assert not (tmp_path / "logs" / "tls").exists()  # the given certificate, no other
    # Without one, the gate makes its own for the TLS rows, in its folder.
    served.clear()
    verify_targets([TARGETS["fastapi-granian-h2"]], tmp_path / "logs", None)
    made = served["fastapi-granian-h2"]
    assert isinstance(made, Certificate) and made.ca_file.parent == tmp_path / "logs" / "tls"


def test_format_results_indents_multiline_problems() -> None:
    result = VerifyResult("t", passed=False, problems=["did not start; see log:\n    boom"])
    assert format_results({"t": result}).splitlines() == [
        "FAIL  t  /io?ms=50 not measured (expected 50)  0/19 requests",
        "      - did not start; see log:",
        "            boom",
    ]


# --- check_server on a stand-in server --------------------------------------------------------


class SlowIoHandler(http.server.BaseHTTPRequestHandler):
    """Every /io request takes OVERHEAD_MS on top of its ?ms= wait; anything else is instant."""

    OVERHEAD_MS = 8.0

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        if parts.path == "/io":
            given = urllib.parse.parse_qs(parts.query).get("ms", ["0"])[0]
            wait_ms = float(given) if given.isdigit() and int(given) <= 100 else 0.0
            time.sleep((wait_ms + self.OVERHEAD_MS) / 1000)
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_io_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowIoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_server_keeps_the_io_overhead(slow_io_url: str) -> None:
    answers, io_ms, overhead_ms = verify.check_server(slow_io_url)
    assert len(answers) == len(REQUESTS)
    # /io?ms=0 costs the stand-in's 8 ms (plus a loopback round trip) ...
    assert SlowIoHandler.OVERHEAD_MS <= overhead_ms < SlowIoHandler.OVERHEAD_MS + 15
    # ... which is taken out of /io?ms=50's wait, not counted against it
    assert 45 <= io_ms <= 60
    assert io_problem(io_ms) is None


# --- real servers ---------------------------------------------------------------------------

FAKE_APP = '''
"""The real FastAPI app, except /io: it never sleeps and refuses with 400, not 422."""
from starlette.datastructures import QueryParams

from targets import common
from targets.fastapi_app import app as real_app


async def app(scope, receive, send):
    if scope["type"] != "http" or scope["path"] != "/io":
        return await real_app(scope, receive, send)
    try:
        status, reply = 200, common.plan_io(QueryParams(scope["query_string"])).reply
    except common.HttpError as error:
        status, reply = 400, error.reply()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
'''


@pytest.mark.e2e
@pytest.mark.solo
def test_real_targets_all_pass(tmp_path: Path) -> None:
    results = verify_targets(list(TARGETS.values()), tmp_path, None)
    assert list(results) == list(TARGETS)
    for result in results.values():
        assert result.passed, format_results(results)
        assert result.io_ms is not None and 45 <= result.io_ms <= 55
        assert result.io_overhead_ms is not None and 0 < result.io_overhead_ms < 20
        assert result.checked == len(REQUESTS)
    # The TLS rows were served with a certificate made for the gate, in its folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(f"verify__{name}.log" for name in TARGETS), "tls"]
    )


@pytest.mark.e2e
@pytest.mark.solo
def test_a_different_app_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gatebench_fake_app.py").write_text(FAKE_APP)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    real = TARGETS["fastapi-uvicorn"]
    fake = replace(real, name="fake", app="gatebench_fake_app:app")
    results = verify_targets([real, fake], tmp_path / "logs", None)
    assert results["fastapi-uvicorn"].passed, format_results(results)
    bad = results["fake"]
    assert not bad.passed and bad.checked == len(REQUESTS)
    assert bad.io_ms is not None and bad.io_ms < 20
    assert bad.io_overhead_ms is not None and bad.io_overhead_ms > 0
    assert "GET /io?ms=-1: status 400 vs 422 (reference fastapi-uvicorn)" in bad.problems
    assert "GET /io?ms=abc: status 400, expected 422" in bad.problems
    assert bad.problems[-1].startswith("/io?ms=50 waited ")
    assert "GET /io?ms=0" not in "\n".join(bad.problems)  # good answers match


@pytest.mark.e2e
def test_an_http2_row_answering_over_http1_fails(tmp_path: Path) -> None:
    # uvicorn speaks no HTTP/2: over TLS it picks http/1.1 from the client's ALPN offer, so a
    # row claiming h2 on it answers every request, but not over the protocol it declares.
    claims_h2 = replace(TARGETS["fastapi-uvicorn"], name="claims-h2", http="2", tls=True)
    results = verify_targets([claims_h2], tmp_path, None)
    result = results["claims-h2"]
    assert not result.passed and result.checked == 0
    (problem,) = result.problems
    assert problem.startswith("GET /health: answered over HTTP/1.1, expected HTTP/2; see its log")


@pytest.mark.e2e
@pytest.mark.solo
def test_a_target_that_cannot_start_fails_and_names_its_log(tmp_path: Path) -> None:
    missing = replace(TARGETS["fastapi-uvicorn"], name="missing", app="gatebench_no_such:app")
    results = verify_targets([missing], tmp_path, None)
    result = results["missing"]
    assert not result.passed and result.checked == 0 and result.io_ms is None
    (problem,) = result.problems
    assert str(tmp_path / "verify__missing.log") in problem
    assert "FAIL  missing" in format_results(results)
