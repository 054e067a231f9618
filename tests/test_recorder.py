"""harness.loadgen.extension: the Recorder (measurement window, exact latency) and failure_kind.

Importing harness.loadgen.extension imports locust, which monkey-patches the standard library
with gevent. The orchestrator (and this test process) must never do that, so every test
here runs its snippet in a fresh interpreter and asserts on the JSON it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.histogram import decode_histogram

PROJECT = Path(__file__).resolve().parent.parent


def run_snippet(body: str) -> Any:
    code = (
        "import json, sys, time\nfrom harness.loadgen import extension as locust_ext\n"
        + textwrap.dedent(body)
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return json.loads(lines[-1])


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
    # [second, successes, failures]
    assert window["per_second"] == [[0, 1, 0], [1, 1, 1], [2, 0, 1], [3, 0, 1], [9, 1, 0]]


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
