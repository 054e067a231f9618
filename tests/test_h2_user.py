"""The HTTP/2 user (``harness.loadgen.h2``) against real servers, in real locust runs.

hypercorn serves HTTP/1.1 and h2c (prior knowledge) on one port, and h2 over TLS (ALPN) with
a trustme certificate; granian serves h2c only. Each e2e test runs ``locust --headless`` on a
tiny locustfile (written below) that sets the link (``harness.loadgen.link.set_link``) at
import, counts request events by type and the TCP connections the process opens
(``harness.loadgen.recorder.watch_tcp_connects``), and writes a JSON summary at test_stop,
after the users stopped: whether their connections were closed and their extra stream
greenlets killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from conftest import PROJECT

# harness.loadgen.h2 imports locust, which must not patch this process: its text, as specified
OPEN_PROBLEM = "HTTP/2 users keep several streams in flight per connection: closed load only"

READY_TIMEOUT_S = 30.0
LOCUSTFILE = """
import json, os, time

import gevent
from locust import constant, events, task

from harness.loadgen import link
from harness.loadgen.h2 import Http2User
from harness.loadgen.recorder import watch_tcp_connects

CONFIG = json.loads(os.environ["H2_TEST_CONFIG"])
link.set_link(link.Link(**CONFIG["link"]))
SUMMARY = {"requests": 0, "failures": 0, "types": {}, "errors": {}, "connects": 0,
           "first": None, "last": None}
USERS = []


def on_connect():
    SUMMARY["connects"] += 1


watch_tcp_connects(on_connect)


@events.request.add_listener
def on_request(request_type, exception=None, **_):
    now = time.time()
    SUMMARY["first"] = SUMMARY["first"] or now
    SUMMARY["last"] = now
    SUMMARY["requests"] += 1
    SUMMARY["types"][request_type] = SUMMARY["types"].get(request_type, 0) + 1
    if exception is not None:
        SUMMARY["failures"] += 1
        SUMMARY["errors"][str(exception)[:80]] = SUMMARY["errors"].get(str(exception)[:80], 0) + 1


@events.test_stop.add_listener
def on_stop(**_):
    gevent.sleep(0.5)  # the users' stop callbacks close their clients
    SUMMARY["open_connections"] = sum(len(u.client.open) for u in USERS)
    SUMMARY["streams_alive"] = sum(len(u.extra_streams) for u in USERS)
    with open(CONFIG["out"], "w") as handle:
        json.dump(SUMMARY, handle)


class H2TestUser(Http2User):
    wait_time = constant(0)

    def __init__(self, environment):
        super().__init__(environment)
        USERS.append(self)

    @task
    def get(self):
        self.client.get(CONFIG["path"], name=CONFIG["path"])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    ca_pem: str | None = None


@dataclass(frozen=True)
class Certs:
    certfile: Path
    keyfile: Path
    ca: trustme.CA

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem.bytes().decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = folder / "server.crt", folder / "server.key"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return Certs(certfile, keyfile, ca)


@contextlib.contextmanager
def running(argv: list[str], url: str, log: Path, client: httpx.Client) -> Iterator[None]:
    """A server process, ready (/health answers through ``client``), always stopped after."""
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=PROJECT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers go with it (killpg)
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"{argv} exited: {log.read_text()[-2000:]}"
            try:
                if client.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{argv} not ready: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        yield
    finally:
        client.close()
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # any worker left behind
        proc.wait(timeout=10)


APP = "targets.fastapi_app:app"


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """HTTP/1.1 and h2c on one port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("hypercorn") / "server.log"
    argv = ["hypercorn", "--bind", f"127.0.0.1:{port}", APP]
    with running(argv, url, log, httpx.Client(trust_env=False)):
        yield Server(url)


@pytest.fixture(scope="module")
def hypercorn_tls(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Server]:
    """TLS; ALPN offers h2 and http/1.1."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("hypercorn-tls") / "server.log"
    argv = ["hypercorn", "--bind", f"127.0.0.1:{port}"]
    argv += ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile), APP]
    context = ssl.create_default_context(cadata=certs.ca_pem)
    client = httpx.Client(http2=True, verify=context, trust_env=False)
    with running(argv, url, log, client):
        yield Server(url, certs.ca_pem)


@pytest.fixture(scope="module")
def granian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """h2c only (prior knowledge): an HTTP/1.1 request gets no answer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("granian") / "server.log"
    argv = ["granian", "--interface", "asgi", "--http", "2"]
    argv += ["--host", "127.0.0.1", "--port", str(port), APP]
    with running(argv, url, log, httpx.Client(http1=False, http2=True, trust_env=False)):
        yield Server(url)


def run_locust(
    tmp_path: Path,
    server: Server,
    *,
    http: str = "2",
    streams: int = 4,
    users: int = 1,
    seconds: int = 3,
    path: str = "/io?ms=50",
    connection: str = "keep-alive",
    ca_pem: str | None = None,
) -> dict[str, Any]:
    """One headless locust run of the test locustfile; its JSON summary."""
    locustfile = tmp_path / "h2_locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    out = tmp_path / "summary.json"
    link = {"http": http, "streams": streams, "connection": connection}
    link["ca_pem"] = ca_pem if ca_pem is not None else server.ca_pem
    config = {"link": link, "path": path, "out": str(out)}
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    argv += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", server.url]
    argv += ["-L", "WARNING", "--only-summary"]
    done = subprocess.run(
        argv,
        cwd=PROJECT,
        env={**os.environ, "H2_TEST_CONFIG": json.dumps(config)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    assert out.is_file(), f"locust wrote no summary (exit {done.returncode}): {done.stderr[-3000:]}"
    summary: dict[str, Any] = json.loads(out.read_text())
    assert summary["open_connections"] == 0, summary  # a stopped user closes its clients
    assert summary["streams_alive"] == 0, summary  # ... and kills its extra greenlets
    return summary


def assert_clean(summary: dict[str, Any], request_type: str) -> None:
    assert summary["requests"] > 0, summary
    assert summary["failures"] == 0, summary
    assert set(summary["types"]) == {request_type}, summary


# --- no server: discovery ------------------------------------------------------------------


def probe(*paths: Path) -> list[dict[str, Any]]:
    argv = [sys.executable, "-m", "harness.loadgen.probe", *map(str, paths)]
    done = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, check=True)
    reports: list[dict[str, Any]] = json.loads(done.stdout)
    return reports


def test_the_h2_scenario_and_calibration_user_are_closed_load_only() -> None:
    scenario, calibration = probe(
        PROJECT / "scenarios" / "h2.py",
        PROJECT / "harness" / "loadgen" / "calibration_locustfile.py",
    )
    assert scenario["error"] is None, scenario
    assert scenario["user_classes"] == ["IoStreamsUser"]
    assert scenario["settings"] == {
        "users": [10, 50], "streams": 8, "http": ["1.1", "2"], "service_time_ms": 50,
    }  # fmt: skip
    assert scenario["open_problem"] == f"user class IoStreamsUser: {OPEN_PROBLEM}"
    assert scenario["holds_connections"] is False  # many requests per connection, not one
    assert calibration["error"] is None, calibration
    assert calibration["user_classes"] == ["CalibrationUser", "CalibrationH2User"]
    assert "CalibrationH2User" in (calibration["open_problem"] or "")


# --- real servers ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    "server",
    [
        "granian",  # h2c only
        "hypercorn",  # h2c by prior knowledge on a server that also speaks HTTP/1.1
        "hypercorn_tls",  # h2 by ALPN over TLS
    ],
)
def test_one_connection_per_user_carries_its_streams(
    tmp_path: Path, server: str, request: pytest.FixtureRequest
) -> None:
    summary = run_locust(tmp_path, request.getfixturevalue(server), users=2, streams=4)
    assert_clean(summary, "H2")
    assert summary["connects"] == 2, summary


@pytest.mark.e2e
def test_an_http1_target_gets_http1_with_a_connection_per_stream(
    tmp_path: Path, hypercorn: Server
) -> None:
    summary = run_locust(tmp_path, hypercorn, http="1.1", users=2, streams=4)
    assert_clean(summary, "H1")
    assert 2 < summary["connects"] <= 8, summary  # up to users x streams, kept alive


@pytest.mark.e2e
@pytest.mark.parametrize("http", ["2", "1.1"])
def test_every_n_requests_a_new_connection(http: str, tmp_path: Path, hypercorn: Server) -> None:
    summary = run_locust(tmp_path, hypercorn, http=http, users=2, streams=4, connection="every 5")
    assert_clean(summary, "H2" if http == "2" else "H1")
    expected = summary["requests"] / 5
    # h2: the last client of each user may be opened and not yet full; HTTP/1.1: the first
    # connections of the pool (users x streams) are opened before any Connection: close.
    assert expected * 0.9 <= summary["connects"] <= expected * 1.1 + 8, summary


@pytest.mark.e2e
def test_an_untrusted_certificate_fails_every_request(
    tmp_path: Path, hypercorn_tls: Server
) -> None:
    other_ca = trustme.CA().cert_pem.bytes().decode()
    summary = run_locust(tmp_path, hypercorn_tls, users=1, streams=2, seconds=1, ca_pem=other_ca)
    assert summary["requests"] > 0 and summary["failures"] == summary["requests"], summary
    assert all("CERTIFICATE_VERIFY_FAILED" in error for error in summary["errors"]), summary


@pytest.mark.e2e
def test_an_error_status_is_a_failure(tmp_path: Path, granian: Server) -> None:
    summary = run_locust(tmp_path, granian, users=1, streams=2, seconds=1, path="/missing")
    assert summary["requests"] > 0 and summary["failures"] == summary["requests"], summary
    assert set(summary["errors"]) == {"HTTP 404 Not Found"}, summary


@pytest.mark.e2e
@pytest.mark.solo
def test_streams_are_in_flight_at_once(tmp_path: Path, granian: Server) -> None:
    """1 user, 4 streams of /io?ms=50: about 4 / 0.05 s = 80 requests per second (1 stream:
    20), over one connection."""
    summary = run_locust(tmp_path, granian, users=1, streams=4, seconds=3)
    assert_clean(summary, "H2")
    assert summary["connects"] == 1, summary
    rps = summary["requests"] / (summary["last"] - summary["first"])
    assert 50 < rps < 85, summary
