"""harness.loadgen.extension: the Recorder (measurement window, exact latency) and failure_kind.

Importing harness.loadgen.extension imports locust, which monkey-patches the standard library
with gevent. The orchestrator (and this test process) must never do that, so the tests that go
through the extension run their snippet in a fresh interpreter and assert on the JSON it
prints. ``harness.loadgen.recorder`` itself imports neither locust nor gevent: the tests of its
newer parts (per-second means, whole-stage connect timings, lateness, held connections) use
it directly.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.histogram import decode_histogram
from harness.loadgen.recorder import (
    LATE_S,
    Recorder,
    parse_active_opens,
    read_active_opens,
    starts_tcp_connection,
)

PROJECT = Path(__file__).resolve().parent.parent


def run_python(code: str, timeout: float = 120) -> Any:
    """Run ``code`` in a fresh interpreter; the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return json.loads(lines[-1])


def run_snippet(body: str) -> Any:
    return run_python(
        "import json, sys, time\nfrom harness.loadgen import extension as locust_ext\n"
        + textwrap.dedent(body)
    )


WINDOW = """
r = locust_ext.Recorder(warmup_s=2.0, duration_s=10.0)
r.record(100.0, "GET /a", 5.0, None)           # before open_window: users still spawning
r.open_window(100.0)                            # window is [102, 112)
r.record(101.999, "GET /a", 6.0, None)          # warm-up
r.record(102.0, "GET /a", 12.3456, None)        # second 0
r.record(103.5, "GET /a", 20.0, None)           # second 1
r.record(103.7, "GET /b", 30.0, "HTTP 503")     # second 1, failure
r.record(104.2, "GET /b", 1.0, "ConnectionRefusedError")  # second 2, failure
r.record(105.0, "GET /b", 999.0, "HTTP 503")    # second 3, failure
r.record(111.999, "GET /b", 40.0, None)         # second 9
r.record(112.0, "GET /a", 7.0, None)            # window end is exclusive
r.record(150.0, "GET /a", 8.0, None)            # long after
data = r.to_dict()
data["hist_count"] = r.histogram.get_total_count()
data["hist_max"] = r.histogram.get_max_value()
data["hist_min"] = r.histogram.get_min_value()
print(json.dumps(data))
"""


@pytest.fixture(scope="module")
def window() -> dict[str, Any]:
    result: dict[str, Any] = run_snippet(WINDOW)
    return result


def test_window_bounds(window: dict[str, Any]) -> None:
    assert window["window_start"] == 102.0
    assert window["window_end"] == 112.0
    assert window["warmup_s"] == 2.0 and window["duration_s"] == 10.0
    assert window["unit"] == "us"


def test_only_requests_inside_window_counted(window: dict[str, Any]) -> None:
    assert window["successes"] == 3  # 102.0, 103.5, 111.999
    assert window["failures"] == 3
    assert window["hist_count"] == 3


def test_failures_by_kind_not_in_histogram(window: dict[str, Any]) -> None:
    assert window["failures_by_kind"] == {"ConnectionRefusedError": 1, "HTTP 503": 2}
    # the failed requests' 30/1/999 ms never reach the latency histogram
    assert window["hist_max"] < 41_000
    assert window["hist_min"] > 12_000
    decoded = decode_histogram(window["histogram"])
    assert decoded.get_total_count() == 3


def test_per_second_buckets(window: dict[str, Any]) -> None:
    # [second, successes, failures, mean latency of the successes in ms (null: none)]
    assert window["per_second"] == [
        [0, 1, 0, 12.346],
        [1, 1, 1, 20.0],
        [2, 0, 1, None],
        [3, 0, 1, None],
        [9, 1, 0, 40.0],
    ]


def test_by_name(window: dict[str, Any]) -> None:
    by_name = window["by_name"]
    assert list(by_name) == ["GET /a", "GET /b"]
    assert (by_name["GET /a"]["successes"], by_name["GET /a"]["failures"]) == (2, 0)
    assert (by_name["GET /b"]["successes"], by_name["GET /b"]["failures"]) == (1, 3)
    assert decode_histogram(by_name["GET /a"]["histogram"]).get_total_count() == 2
    assert decode_histogram(by_name["GET /b"]["histogram"]).get_total_count() == 1


def test_complete_when_window_has_passed(window: dict[str, Any]) -> None:
    # window_end (epoch 112 s) is long past
    assert window["complete"] is True


def test_latency_full_resolution() -> None:
    data = run_snippet(
        """
        r = locust_ext.Recorder(warmup_s=0.0, duration_s=10.0)
        r.open_window(1000.0)
        for _ in range(5):
            r.record(1001.0, "GET /io", 12.3456, None)
        print(json.dumps(r.to_dict()))
        """
    )
    histogram = decode_histogram(data["histogram"])
    assert histogram.get_total_count() == 5
    for percentile in (0.0, 50.0, 100.0):
        value = histogram.get_value_at_percentile(percentile)
        assert value == pytest.approx(12345.6, rel=1e-3), value
    # not rounded to 12 ms (what locust's own stats would report)
    assert abs(histogram.get_value_at_percentile(50.0) - 12000) > 300


def test_latency_clamped_to_histogram_range() -> None:
    data = run_snippet(
        """
        r = locust_ext.Recorder(warmup_s=0.0, duration_s=10.0)
        r.open_window(1000.0)
        r.record(1001.0, "GET /fast", 0.0, None)
        r.record(1001.0, "GET /stuck", 1e12, None)
        print(json.dumps([r.successes, r.histogram.get_min_value(),
                          r.histogram.get_max_value(), locust_ext.HIGHEST_US]))
        """
    )
    successes, low, high, highest = data
    assert successes == 2
    assert low == 1
    assert high == pytest.approx(highest, rel=1e-3)


def test_complete_flag_false_before_window_end_or_never_opened() -> None:
    data = run_snippet(
        """
        never = locust_ext.Recorder(warmup_s=1.0, duration_s=5.0)
        running = locust_ext.Recorder(warmup_s=1.0, duration_s=3600.0)
        running.open_window(time.time())
        print(json.dumps([never.to_dict(), running.to_dict()]))
        """
    )
    never, running = data
    assert never["complete"] is False
    assert never["window_start"] is None and never["successes"] == 0
    assert never["per_second"] == [] and never["by_name"] == {}
    assert running["complete"] is False


def test_failure_kind() -> None:
    data = run_snippet(
        """
        from types import SimpleNamespace
        kind = locust_ext.failure_kind
        print(json.dumps({
            "ok": kind(None, SimpleNamespace(status_code=200)),
            "503": kind(Exception("boom"), SimpleNamespace(status_code=503)),
            "404": kind(RuntimeError("x"), SimpleNamespace(status_code=404)),
            "refused": kind(ConnectionRefusedError(111, "refused"), None),
            "status0": kind(TimeoutError(), SimpleNamespace(status_code=0)),
            "bad_body": kind(ValueError("bad body"), SimpleNamespace(status_code=200)),
            "no_status": kind(KeyError("k"), object()),
        }))
        """
    )
    assert data == {
        "ok": None,
        "503": "HTTP 503",
        "404": "HTTP 404",
        "refused": "ConnectionRefusedError",
        "status0": "TimeoutError",
        "bad_body": "ValueError",
        "no_status": "KeyError",
    }


# --- in process: harness.loadgen.recorder alone ---------------------------------------------


def opened(warmup_s: float = 1.0, duration_s: float = 10.0, at: float = 100.0) -> Recorder:
    recorder = Recorder(warmup_s, duration_s)
    recorder.open_window(at)  # window: [at + warmup_s, at + warmup_s + duration_s)
    return recorder


def test_per_second_mean_is_of_the_recorded_latency() -> None:
    recorder = opened()
    recorder.record(101.1, "GET /a", 10.0, None)
    recorder.record(101.5, "GET /a", 30.0, None)
    recorder.record(101.9, "GET /a", 500.0, "HTTP 503")  # a failure: not in the mean
    recorder.record(102.2, "GET /a", 5.0, None, corrected_ms=250.0)  # open load: corrected
    recorder.record(103.0, "GET /a", 5.0, "ReadTimeout")
    rows = recorder.to_dict()["per_second"]
    assert rows == [[0, 2, 1, 20.0], [1, 1, 0, 250.0], [2, 0, 1, None]]
    assert all(len(row) == 4 for row in rows)


def test_per_second_mean_uses_full_resolution() -> None:
    recorder = opened()
    for ms in (1.0004, 2.0004, 3.0004):
        recorder.record(101.0, "GET /a", ms, None)
    assert recorder.to_dict()["per_second"] == [[0, 3, 0, 2.0]]  # 1000+2000+3000 us / 3


def test_connect_and_first_message_over_the_whole_stage() -> None:
    recorder = Recorder(warmup_s=1.0, duration_s=2.0)
    recorder.request(99.0, "WS", "connect", 12.0, None)  # spawning: before the window opens
    recorder.request(99.1, "WS", "first-message", 40.0, None)
    recorder.request(99.2, "SSE", "connect", 3000.0, "ConnectionRefusedError")
    recorder.open_window(100.0)  # window [101, 103)
    recorder.request(100.5, "WS", "connect", 14.0, None)  # warm-up
    recorder.request(100.6, "SSE", "first-event", 20.0, None)
    recorder.request(102.0, "WS", "connect", 16.0, None)  # in the window
    recorder.request(102.1, "WS", "connect", 1.0, "HTTP 503")  # a failed attempt, in the window
    recorder.request(104.0, "WS", "connect", 18.0, None)  # after the window, not yet written
    data = recorder.to_dict()
    recorder.written = True
    recorder.request(104.5, "WS", "connect", 18.0, None)  # after the record: not counted
    assert data["connects"] == 4 and data["connect_failures"] == 2
    assert recorder.connects == 4
    connect, first = data["connect"], data["first_message"]
    assert (connect["successes"], connect["failures"]) == (4, 2)
    values = decode_histogram(connect["histogram"])
    assert values.get_total_count() == 4
    assert values.get_min_value() == pytest.approx(12_000, rel=1e-3)
    assert values.get_max_value() == pytest.approx(18_000, rel=1e-3)
    assert (first["successes"], first["failures"]) == (2, 0)
    assert decode_histogram(first["histogram"]).get_total_count() == 2
    # In the window: the successful connect only. The failed attempt is no failure there.
    assert data["failures"] == 0 and data["failures_by_kind"] == {}
    assert data["by_name"]["WS connect"]["successes"] == 1
    assert data["by_name"]["WS connect"]["failures"] == 0
    assert data["per_second"] == [[1, 1, 0, 16.0]]


def test_http_requests_named_connect_are_ordinary_requests() -> None:
    recorder = opened()
    recorder.request(102.0, "GET", "connect", 5.0, "HTTP 500")
    data = recorder.to_dict()
    assert data["failures"] == 1 and data["failures_by_kind"] == {"HTTP 500": 1}
    assert data["connects"] == 0 and data["connect_failures"] == 0
    assert data["connect"]["failures"] == 0


def test_connections_not_held_at_the_close_are_connect_failures() -> None:
    recorder = opened()
    recorder.request(102.0, "SSE", "message", 3.0, None)
    recorder.request(102.5, "SSE", "message", 0.0, "MissedMessage")
    recorder.request(102.6, "SSE", "connect", 1.0, "ConnectionRefusedError")  # attempt only
    recorder.close_connections({"SSE": 10}, {"SSE": 7})
    data = recorder.to_dict()
    assert data["connections_held"] == 7
    assert data["failures"] == 1 + 3
    assert data["failures_by_kind"] == {"MissedMessage": 1, "connect": 3}
    assert data["by_name"]["SSE connect"]["failures"] == 3
    assert data["by_name"]["SSE connect"]["successes"] == 0
    assert data["connect_failures"] == 1
    # Timed per second, the unheld connections are not: they happened at no instant.
    assert sum(row[2] for row in data["per_second"]) == 1


def test_held_connections_never_make_negative_failures() -> None:
    recorder = opened()
    recorder.close_connections({"WS": 5}, {"WS": 6, "SSE": 2})
    data = recorder.to_dict()
    assert data["connections_held"] == 8
    assert data["failures"] == 0 and data["by_name"] == {}


def test_http_cells_have_no_connections_held() -> None:
    assert "connections_held" not in opened().to_dict()


def test_lateness_at_the_actual_start() -> None:
    recorder = opened()  # window [101, 111)
    # (completed at, response time ms, intended start): actual start = now - response time.
    recorder.request(101.5, "GET", "/a", 100.0, None, intended=101.4)  # on time (0 ms)
    recorder.request(102.0, "GET", "/a", 50.0, None, intended=101.945)  # 5 ms: not late
    recorder.request(103.0, "GET", "/a", 10.0, None, intended=102.5)  # 490 ms late
    recorder.request(104.0, "GET", "/a", 5.0, "HTTP 503", intended=103.9)  # 95 ms, failed
    recorder.request(100.9, "GET", "/a", 1.0, None, intended=100.0)  # warm-up: not counted
    recorder.request(111.0, "GET", "/a", 1.0, None, intended=105.0)  # after: not counted
    recorder.request(105.0, "GET", "/a", 700.0, None)  # a later request of a task: no intended
    figures = recorder.open_figures()
    assert figures["late"] == 2
    assert figures["max_lateness_ms"] == pytest.approx(490.0, abs=0.01)
    lateness = decode_histogram(figures["lateness_histogram"])
    assert lateness.get_total_count() == 4
    assert figures["lateness_p99_ms"] == pytest.approx(490.0, rel=1e-3)
    # The latency itself is from the intended start: 500 ms for the one that started late.
    assert recorder.by_name["GET /a"]["histogram"].get_max_value() == pytest.approx(
        700_000, rel=1e-3
    )
    assert recorder.uncorrected.get_max_value() == pytest.approx(700_000, rel=1e-3)
    assert recorder.histogram.get_value_at_percentile(75) == pytest.approx(500_000, rel=1e-3)


def test_lateness_threshold_and_empty_figures() -> None:
    recorder = opened()
    assert recorder.open_figures()["lateness_p99_ms"] is None
    assert recorder.open_figures()["late"] == 0
    recorder.record_lateness(102.0, LATE_S)  # exactly the threshold: not late
    recorder.record_lateness(102.0, LATE_S + 0.001)
    recorder.record_lateness(102.0, -0.002)  # started before its time (clock resolution)
    figures = recorder.open_figures()
    assert figures["late"] == 1
    assert figures["max_lateness_ms"] == pytest.approx((LATE_S + 0.001) * 1000)
    assert decode_histogram(figures["lateness_histogram"]).get_min_value() == 1  # clamped


# --- TCP connections opened in the window (keep-alive) ---------------------------------------

# /proc/net/snmp as Linux writes it: per protocol, a line of names, then a line of values
# (the long lines are continued with a backslash here).
SNMP = """\
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos \
InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs \
ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 1 64 48123911 0 0 0 0 0 48123880 47890214 10 0 0 0 0 0 0 0 0 47890214
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs OutMsgs OutErrors OutRateLimitGlobal
Icmp: 52 0 0 52 52 0 0
IcmpMsg: InType3 OutType3
IcmpMsg: 52 52
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets \
CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 912103 905121 8349 1204 12 47987360 48622934 31 0 9611 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti
Udp: 136389 52 0 136441 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors
UdpLite: 0 0 0 0 0 0 0
"""


def test_parse_active_opens() -> None:
    assert "ActiveOpens" in SNMP.splitlines()[6] and len(SNMP.splitlines()) == 12
    assert parse_active_opens(SNMP) == 912103  # not PassiveOpens (905121), not MaxConn (-1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Ip: Forwarding\nIp: 1\n",  # no Tcp lines
        "Tcp: RtoAlgorithm ActiveOpens\n",  # names without values
        "Tcp: RtoAlgorithm PassiveOpens\nTcp: 1 5\n",  # no ActiveOpens field
        "Tcp: RtoAlgorithm ActiveOpens\nTcp: 1\n",  # a value missing
        "Tcp: RtoAlgorithm ActiveOpens\nTcp: 1 many\n",  # not a number
    ],
)
def test_parse_active_opens_without_a_count(text: str) -> None:
    assert parse_active_opens(text) is None


def test_read_active_opens(tmp_path: Path) -> None:
    path = tmp_path / "snmp"
    path.write_text(SNMP)
    assert read_active_opens(str(path)) == 912103
    assert read_active_opens(str(tmp_path / "missing")) is None  # unreadable: unknown
    path.write_bytes(b"\xff\xfe")
    assert read_active_opens(str(path)) is None


@pytest.mark.skipif(not Path("/proc/net/snmp").is_file(), reason="Linux only")
def test_read_active_opens_of_this_machine() -> None:
    first = read_active_opens()
    assert first is not None
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()),
    ):
        pass
    second = read_active_opens()
    assert second is not None and second >= first + 1


def test_tcp_connects_are_counted_in_the_window_only() -> None:
    recorder = Recorder(warmup_s=1.0, duration_s=10.0, count_connects=True)
    recorder.tcp_connect(99.0)  # users spawning
    recorder.open_window(100.0)  # window [101, 111)
    recorder.tcp_connect(100.5)  # warm-up
    for now in (101.0, 105.0, 110.999):
        recorder.tcp_connect(now)
    recorder.tcp_connect(111.0)  # the end is exclusive, as for requests
    assert recorder.to_dict()["tcp_connects"] == 3
    recorder.written = True
    recorder.tcp_connect(105.0)  # after the record was taken
    assert recorder.tcp_connects == 3


def test_tcp_connects_unknown_when_not_counted() -> None:
    recorder = opened()  # count_connects off: the extension did not install its hook
    recorder.tcp_connect(105.0)
    assert recorder.to_dict()["tcp_connects"] is None


def test_active_opens_difference_over_the_window() -> None:
    recorder = opened()
    assert recorder.to_dict()["tcp_active_opens"] is None  # never read
    recorder.active_opens(1000, at_close=False)
    assert recorder.to_dict()["tcp_active_opens"] is None  # window not closed yet
    recorder.active_opens(1420, at_close=True)
    assert recorder.to_dict()["tcp_active_opens"] == 420
    for start, end in ((None, 1420), (1000, None), (1000, 999)):  # unreadable, or went back
        recorder.active_opens(start, at_close=False)
        recorder.active_opens(end, at_close=True)
        assert recorder.to_dict()["tcp_active_opens"] is None


def test_starts_tcp_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = server.getsockname()
        with socket.socket() as client:
            assert starts_tcp_connection(client)  # not connected yet: a new connection
            client.connect(address)
            assert not starts_tcp_connection(client)  # connected: gevent finishing its connect
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            assert not starts_tcp_connection(udp)
    left, right = socket.socketpair()  # AF_UNIX
    with left, right:
        assert not starts_tcp_connection(left)
    assert not starts_tcp_connection(object())


# Audit hooks last as long as the process: each case runs in a fresh interpreter.
CONNECTS = """
import json, socket, sys, time
from harness.loadgen.recorder import Recorder, watch_tcp_connects

raw = []  # every socket.connect audit event, counted or not
sys.addaudithook(lambda event, args: raw.append(event) if event == "socket.connect" else None)
recorder = Recorder(0.0, 600.0, count_connects=True)
watch_tcp_connects(lambda: recorder.tcp_connect(time.time()))
server = socket.create_server(("127.0.0.1", 0), backlog=64)
address = server.getsockname()
early = socket.create_connection(address)  # before the window: not counted
recorder.open_window(time.time())
held = [socket.create_connection(address) for _ in range(3)]
for _ in range(5):
    held[0].sendall(b"GET / HTTP/1.1\\r\\n\\r\\n")  # reusing a connection: no new one
with socket.socket() as unused:
    unused.bind(("127.0.0.1", 0))
    refused = unused.getsockname()
try:
    socket.create_connection(refused)  # refused: an attempt, counted as ActiveOpens does
except OSError:
    pass
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
    udp.connect(address)  # not TCP
print(json.dumps({"tcp_connects": recorder.to_dict()["tcp_connects"], "raw": len(raw)}))
"""


@pytest.mark.parametrize("gevent", [True, False], ids=["gevent", "blocking"])
def test_watch_tcp_connects_counts_each_connection_once(gevent: bool) -> None:
    patch = "from gevent import monkey; monkey.patch_all()\n" if gevent else ""
    counts = run_python(patch + CONNECTS, timeout=60)
    assert counts["tcp_connects"] == 3 + 1
    if gevent:  # a non-blocking connect calls connect_ex again once connected: not counted
        assert counts["raw"] > counts["tcp_connects"] + 2
