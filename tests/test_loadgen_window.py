"""Inside the locust process: the window's end, open-load lateness, held connections.

``harness.loadgen.extension``, ``open_load`` and ``users`` import locust (and gevent, which
patches the standard library), so each test runs its snippet in a fresh interpreter and
asserts on the JSON it prints last, as ``tests/test_recorder.py`` does.
"""

from __future__ import annotations

import textwrap

import pytest

# The snippet runner of the recorder tests: each snippet runs in a fresh interpreter, with
# ``harness.loadgen.extension`` imported as ``locust_ext``.
from test_recorder import run_snippet

# --- the window never ends early -------------------------------------------------------------


def test_sleep_until_sleeps_again_when_woken_early() -> None:
    data = run_snippet(
        """
        from harness.loadgen.extension import sleep_until

        now = [0.0]
        asked = []

        def early_sleep(seconds):  # wakes 4 ms early, as gevent's cached loop time can
            asked.append(seconds)
            now[0] += seconds - 0.004 if seconds > 0.01 else seconds + 0.0001

        sleep_until(1.0, sleep=early_sleep, clock=lambda: now[0])
        returned_at = now[0]
        sleep_until(0.5, sleep=early_sleep, clock=lambda: now[0])  # already past: no sleep
        print(json.dumps({"at": returned_at, "asked": asked}))
        """
    )
    assert data["at"] >= 1.0
    assert len(data["asked"]) == 2
    assert data["asked"][0] == pytest.approx(1.0)
    assert data["asked"][1] == pytest.approx(0.004)


def test_sleep_until_with_gevent_never_returns_before_the_deadline() -> None:
    data = run_snippet(
        """
        import gevent
        from harness.loadgen.extension import sleep_until

        gevent.spawn(lambda: [gevent.sleep(0.001) for _ in range(200)])  # a busy loop
        early = []
        for _ in range(20):
            deadline = time.time() + 0.013
            sleep_until(deadline)
            early.append(deadline - time.time())
        print(json.dumps(early))
        """
    )
    assert max(data) <= 0.0, data


# --- open load: lateness at the actual start; the schedule's counters --------------------------


def test_on_request_measures_lateness_at_the_actual_start() -> None:
    data = run_snippet(
        """
        import gevent
        from harness.loadgen import extension as ext
        from harness.loadgen.open_load import intended_start
        from harness.loadgen.recorder import Recorder

        recorder = Recorder(warmup_s=0.0, duration_s=60.0)
        recorder.open_window(time.time() - 1.0)
        ext._recorder = recorder
        now = time.time()
        # A task intended to start 0.5 s ago whose first request took 0.1 s: it started
        # about 0.4 s late, and its latency is about 0.5 s.
        intended_start[gevent.getcurrent()] = now - 0.5
        ext._on_request(name="/a", request_type="GET", response_time=100.0)
        # The task's next request has no intended start: timed as is, no lateness.
        ext._on_request(name="/a", request_type="GET", response_time=2.0)
        # Another task, on time: intended start = its actual start.
        intended_start[gevent.getcurrent()] = time.time() - 0.02
        ext._on_request(name="/a", request_type="GET", response_time=20.0)
        figures = recorder.open_figures()
        print(json.dumps({
            "figures": figures,
            "max_ms": recorder.histogram.get_max_value() / 1000,
            "uncorrected_max_ms": recorder.uncorrected.get_max_value() / 1000,
            "count": recorder.lateness.get_total_count(),
            "left": len(intended_start),
        }))
        """
    )
    figures = data["figures"]
    assert figures["late"] == 1
    assert 390 <= figures["max_lateness_ms"] < 450
    assert data["count"] == 2
    assert 490 <= data["max_ms"] < 560
    assert data["uncorrected_max_ms"] == pytest.approx(100, rel=1e-2)
    assert data["left"] == 0


def test_schedule_counts_launches_in_the_window_and_in_flight_at_the_close() -> None:
    data = run_snippet(
        """
        from harness.loadgen.open_load import Schedule

        schedule = Schedule()
        schedule.configure(200.0, "fixed", 1, duration_s=10.0)
        schedule.launch(99.0)  # before the window is known (cannot happen: on_start opens it)
        schedule.window = (100.0, 110.0)
        for due in (99.99, 100.0, 105.0, 109.999, 110.0, 111.0):
            schedule.launch(due)
        schedule.in_flight -= 4  # four finished
        schedule.close_window()
        schedule.in_flight -= 3  # more finish as the users stop
        print(json.dumps(schedule.to_dict()))
        """
    )
    assert data == {
        "rate": 200.0,
        "arrivals": "fixed",
        "offered": 2000.0,
        "launched": 7,
        "launched_in_window": 3,
        "dropped": 0,
        "in_flight_at_end": 3,
        "late_scheduler": 0,
    }


# --- long-lived connections: held, and counted at the window's close ---------------------------


def test_holding_counts_a_connection_until_it_ends_however_it_ends() -> None:
    data = run_snippet(
        """
        import gevent
        from harness.loadgen import users

        seen = []
        with users.holding("WS"):
            seen.append(users.held_connections())
            try:
                with users.holding("SSE"):
                    seen.append([users.held_connections(), users.held_connections("SSE")])
                    raise OSError("reset")
            except OSError:
                pass
            seen.append(users.held_by_protocol())

        def hold_forever():
            with users.holding("SSE"):
                gevent.sleep(60)

        greenlet = gevent.spawn(hold_forever)
        gevent.sleep(0.01)
        seen.append(users.held_connections())
        greenlet.kill()  # a stopping user: GreenletExit inside the block
        seen.append(users.held_connections())
        print(json.dumps(seen))
        """
    )
    assert data == [1, [2, 1], {"WS": 1, "SSE": 0}, 1, 0]


SSE_SERVER = """
import gevent, http.server, threading
from locust.env import Environment
from harness.loadgen import users

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for seq in (1, 2):
            body = json.dumps({"seq": seq, "sent": time.time()})
            self.wfile.write(f"id: {seq}\\ndata: {body}\\n\\n".encode())
            self.wfile.flush()
        time.sleep(SERVER_HOLD_S)  # then the stream ends (HTTP/1.0: the connection closes)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()

class Stream(users.SseUser):
    host = f"http://127.0.0.1:{server.server_address[1]}"
    retry_delay_s = 30.0

events = []
environment = Environment(user_classes=[Stream])
environment.events.request.add_listener(
    lambda request_type, name, exception=None, **_: events.append(
        [request_type, name, None if exception is None else type(exception).__name__]
    )
)
"""


def test_an_sse_user_holds_its_connection_while_it_streams() -> None:
    data = run_snippet(
        "SERVER_HOLD_S = 0.3\n"
        + SSE_SERVER
        + textwrap.dedent(
            """
        user = Stream(environment)
        held = []
        greenlet = gevent.spawn(user.hold_stream)
        gevent.sleep(0.15)
        held.append(users.held_connections("SSE"))  # connected, streaming
        greenlet.join(timeout=5)  # the server ends the stream: hold_stream returns
        held.append(users.held_connections("SSE"))
        greenlet = gevent.spawn(user.hold_stream)
        gevent.sleep(0.15)
        held.append(users.held_connections())
        greenlet.kill()  # the user is stopped mid-stream
        held.append(users.held_connections())
        print(json.dumps({"held": held, "events": events}))
        """
        )
    )
    assert data["held"] == [1, 0, 1, 0]
    names = [name for _, name, failed in data["events"] if failed is None]
    assert names[:4] == ["connect", "first-event", "message", "message"]
    assert all(kind == "SSE" for kind, _, _ in data["events"])


def test_window_close_counts_unheld_connections_as_connect_failures() -> None:
    data = run_snippet(
        "SERVER_HOLD_S = 5.0\n"
        + SSE_SERVER
        + textwrap.dedent(
            """
        from types import SimpleNamespace
        from harness.loadgen import extension as ext
        from harness.loadgen.open_load import Schedule
        from harness.loadgen.recorder import Recorder
        from harness.loadgen.stages import Stage

        recorder = Recorder(warmup_s=0.0, duration_s=60.0)
        recorder.open_window(time.time() - 1.0)
        ext._recorder = recorder
        environment.events.request.add_listener(ext._on_request)
        # Three users asked for; two get through, one is refused (its connect fails).
        holders = [gevent.spawn(Stream(environment).hold_stream) for _ in range(2)]

        class Refused(users.SseUser):
            host = "http://127.0.0.1:9"  # discard port: nothing listens
            retry_delay_s = 30.0

        refused = gevent.spawn(Refused(environment).hold_stream)
        gevent.sleep(0.3)
        stage = Stage("c", "/tmp", "closed", 3, None, 0.0, 60.0)
        runner = SimpleNamespace(user_classes=[Stream])
        record = ext._close_window(runner, stage, recorder, Schedule(), stage.users)
        http_record = Recorder(0.0, 1.0).to_dict()
        for greenlet in (*holders, refused):
            greenlet.kill()
        print(json.dumps({"record": record, "after": users.held_connections(),
                          "requested_http": ext._requested_connections(
                              SimpleNamespace(user_classes=[]), stage.users)}))
        """
        )
    )
    record = data["record"]
    assert record["connections_held"] == 2
    assert record["connects"] == 2 and record["connect_failures"] == 1
    assert record["failures"] == 1  # the refused user once: its unheld connection
    assert record["failures_by_kind"] == {"connect": 1}
    assert record["by_name"]["SSE connect"] == {
        "successes": 2,
        "failures": 1,
        "histogram": record["by_name"]["SSE connect"]["histogram"],
    }
    assert record["connect"]["successes"] == 2 and record["connect"]["failures"] == 1
    assert record["first_message"]["successes"] == 2
    assert data["after"] == 0
    assert data["requested_http"] is None
