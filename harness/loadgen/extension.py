"""Runs inside the locust process: a sweep of cells, each with exact latency recording.

Loaded next to a scenario file (``locust -f scenario.py,harness/loadgen/extension.py``) with
``--gatebench-plan FILE`` (``harness.loadgen.stages``); the orchestrator never imports this
module. One process runs every stage (cell) of the plan in order. For each stage it

- waits for the orchestrator's go file (the target's server is ready; it names the host and
  the link: the target's HTTP version, the run's CA when it serves TLS, the scenario's
  connection policy and streams, ``harness.loadgen.link``, which FastHttpUser and the HTTP/2
  user follow), then starts the stage's users from zero (or, for open load, one driver user
  that launches requests on the arrival schedule, ``harness.loadgen.open_load``);
- opens the measurement window ``warmup_s`` after all users are spawned (open load: after
  the schedule starts) and closes it ``duration_s`` later (``sleep_until``: never early): only
  requests that *complete* inside it are counted (``harness.loadgen.recorder``), so warm-up
  never reaches a figure;
- open load: times each task from its intended start and measures how late it actually
  started (at its first request), counts arrivals launched in the window and notes the tasks
  still in flight when the window closes;
- long-lived connections (``harness.loadgen.users``): counts and times ``connect`` and the
  first message over the whole stage, warm-up included, since users connect while they
  spawn; when the window closes, reads how many connections are held and counts each
  requested one that is not as a failure of kind ``"connect"``;
- notes when the stage's load started (``load_started_at``, epoch seconds);
- counts the TCP connections this process starts in the window (``tcp_connects``: a
  ``socket.connect`` audit hook, ``harness.loadgen.recorder.watch_tcp_connects``; per request,
  about 1 against a server that closes after every response, about 0 with keep-alive), and
  reads the machine's ``ActiveOpens`` (``/proc/net/snmp``) at the window's start and close
  (``tcp_active_opens``, every process's connects: a cross-check, see the recorder);
- stops the users, then writes the cell's ``locust_*.csv`` (locust's own figures for the
  stage) and ``latency.json`` last (``harness.schema.LATENCY_FILE``; every key is listed in
  ``harness.loadgen.recorder``): its appearance tells the orchestrator the stage is done.

After the last stage locust quits. It also quits when its parent (the orchestrator) is gone
or no go file comes within ``GO_TIMEOUT_S``.

**Several generators** (``--generators N``, locust's ``--master``/``--worker``): the master runs
the plan as above but starts no request itself. Per stage it sends each worker the stage
(``STAGE_MESSAGE``, with the stage's link: closed load splits the users over the workers,
locust's own dispatch; open load runs one driver per worker at rate / N, each with its own
arrival seed), starts the users,
and once every worker has spawned them tells all workers to open their windows at once
(``WINDOW_MESSAGE``: each worker times its window from the message's arrival, so workers on
other hosts need no synchronised clock). Each worker records its share exactly as one process
does, measures its own CPU over its window, and at its window's close sends its whole record
(``RECORD_MESSAGE``: encoded histograms, counts, lateness, its request log) to the master,
which adds them (``harness.loadgen.merge``) into the cell's ``latency.json``, with a
``workers`` list of each worker's own figures. A worker missing after ``RECORD_WAIT_S`` makes
the record incomplete (the cell fails, naming it). The master writes ``READY_FILE`` beside
the plan once every expected worker has joined. A worker whose master stops sending heartbeats
for ``MASTER_GONE_S`` quits by itself.
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from locust import User, events
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_STOPPED, MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from harness import schema
from harness.fileio import atomic_write_text, replacing
from harness.loadgen import OPEN_USER_CLASS
from harness.loadgen.link import Link, install, set_link
from harness.loadgen.link import current as current_link
from harness.loadgen.merge import WORKER_KEY, merge_logs, merge_records
from harness.loadgen.open_load import Schedule, check_user_class, intended_start, make_open_user
from harness.loadgen.recorder import (
    HIGHEST_US,
    Recorder,
    failure_kind,
    read_active_opens,
    watch_tcp_connects,
)
from harness.loadgen.stages import READY_FILE, Stage, read_go, read_plan

__all__ = ["HIGHEST_US", "Recorder", "failure_kind", "sleep_until"]

USERS_MODULE = "harness.loadgen.users"  # imported by long-lived scenarios only (websocket)

GO_POLL_S = 0.005
GO_TIMEOUT_S = 150.0  # longer than a target server may take to start, retries included
LOCUST_CSV = {  # file name -> StatsCSV method writing it
    f"{schema.LOCUST_CSV_PREFIX}_stats.csv": "requests_csv",
    f"{schema.LOCUST_CSV_PREFIX}_failures.csv": "failures_csv",
    f"{schema.LOCUST_CSV_PREFIX}_exceptions.csv": "exceptions_csv",
}

_environment: Environment | None = None
_stage: Stage | None = None  # the running stage
_recorder: Recorder | None = None  # ... and what it recorded
_schedule = Schedule()  # ... and its arrival schedule (open load)
_window_opened = Event()
_idle = Event()  # set once locust's own start (with no users) is done
_counting_connects = False  # the TCP connect audit hook is installed (a plan is running)

# Several generators (locust master and workers), see the module docstring.
STAGE_MESSAGE = "gatebench_stage"  # master -> workers: the stage to run, and how many share it
WINDOW_MESSAGE = "gatebench_window"  # master -> workers: open the measurement window now
RECORD_MESSAGE = "gatebench_record"  # worker -> master: its record of the stage
RECORD_WAIT_S = 30.0  # after its own window's end, the master waits this long for the records
WORKERS_WAIT_S = 30.0  # ... and at a stage's start, this long for every worker to be ready
MASTER_GONE_S = 5.0  # a worker without a heartbeat from its master this long quits
_records: dict[str, list[dict[str, Any]]] = {}  # master: cell id -> the workers' records
_worker_users = 0  # worker: users of the running stage on this worker


def _current_schedule() -> Schedule:
    return _schedule


def _loaded_classes() -> list[type[User]]:
    """Every loaded user class but the open-load driver."""
    if _environment is None or not _environment.available_user_classes:
        return []
    return [
        cls  # type: ignore[misc]  # locust annotates the values as User, they are classes
        for name, cls in _environment.available_user_classes.items()
        if name != OPEN_USER_CLASS
    ]


def _scenario_classes() -> list[type[User]]:
    """The scenario's user classes, checked for open-model load."""
    classes = _loaded_classes()
    for cls in classes:
        problem = check_user_class(cls)
        if problem:
            raise RuntimeError(problem)
    return classes


def _open_window_now() -> None:
    # A worker's window opens when the master says so (WINDOW_MESSAGE), on every worker at once.
    worker = isinstance(_environment and _environment.runner, WorkerRunner)
    if _recorder is not None and _recorder.window_start is None and not worker:
        _open_window()


GatebenchOpenUser = make_open_user(_current_schedule, _scenario_classes, _open_window_now)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("gatebench")
    group.add_argument("--gatebench-plan", default="", help="the sweep plan (stages) to run")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment
    install()  # FastHttpUser follows each stage's link: TLS verification, connection policy
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _start_worker(runner)  # a worker gets its stages from the master, not from a plan
        return
    options = environment.parsed_options
    if options is None or not options.gatebench_plan:
        return  # loaded without the harness (e.g. plain `locust -f`): record nothing
    if isinstance(runner, MasterRunner):
        runner.register_message(RECORD_MESSAGE, _on_record)
    else:
        _count_connects()
    gevent.spawn(_sweep, environment, options.gatebench_plan)


def _count_connects() -> None:
    global _counting_connects
    if not _counting_connects:
        watch_tcp_connects(_on_tcp_connect)
        _counting_connects = True


@events.request.add_listener
def _on_request(
    name: str = "",
    request_type: str = "",
    response_time: float = 0.0,
    exception: BaseException | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    if _recorder is None:
        return
    now = time.time()
    # Open load: the first request of a task is timed from the task's intended start.
    intended = intended_start.pop(gevent.getcurrent(), None)
    kind = failure_kind(exception, response)
    _recorder.request(now, request_type, name, response_time, kind, intended)


def _on_tcp_connect() -> None:
    if _recorder is not None:
        _recorder.tcp_connect(time.time())


@events.test_start.add_listener
def _on_test_start(**_: Any) -> None:
    if _recorder is not None and _recorder.load_started_at is None:
        _recorder.load_started_at = time.time()


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    if _stage is None:
        _idle.set()  # locust's own headless start, with no users: the sweep may begin
        return
    if _recorder is None or _recorder.window_start is not None or _environment is None:
        return
    runner = _environment.runner
    if isinstance(runner, MasterRunner):
        # Every worker has spawned its share (open load: its driver): all open their windows.
        _open_window()
        runner.send_message(WINDOW_MESSAGE, {"cell_id": _stage.cell_id})
    elif not isinstance(runner, WorkerRunner) and _stage.load_model == "closed":
        # Closed load: warm-up starts once every user is spawned. Open load starts its window
        # when the schedule starts (see _open_window_now).
        _open_window()


@events.test_stop.add_listener
def _on_stop(environment: Environment, **_: Any) -> None:
    # locust stopping under a stage (SIGTERM, a crash): write what there is, marked incomplete.
    # A worker writes nothing: its record goes to the master.
    if isinstance(environment.runner, WorkerRunner):
        return
    if _stage is not None and _recorder is not None and not _recorder.written:
        _write_stage(environment, _stage, _recorder, _recorder.to_dict())


def _open_window() -> None:
    assert _recorder is not None and _stage is not None
    _recorder.open_window(time.time())
    assert _recorder.window_start is not None and _recorder.window_end is not None
    _schedule.window = (_recorder.window_start, _recorder.window_end)
    _window_opened.set()
    if _environment is not None and isinstance(_environment.runner, WorkerRunner):
        return  # the cell's folder is the master's
    window = {"window_start": _recorder.window_start, "window_end": _recorder.window_end}
    # Tells the orchestrator when the window opens (it times an injected stall by it).
    atomic_write_text(os.path.join(_stage.out_dir, schema.WINDOW_FILE), json.dumps(window))


def _sweep(environment: Environment, plan: str) -> None:
    runner = environment.runner
    assert runner is not None
    stages = read_plan(plan)
    _idle.wait(timeout=30)
    if isinstance(runner, MasterRunner):  # locust starts only once every worker has joined
        workers = [{"index": runner.get_worker_index(c.id), "id": c.id} for c in runner.clients.all]
        ready = {"workers": sorted(workers, key=lambda w: w["index"])}
        atomic_write_text(os.path.join(os.path.dirname(plan), READY_FILE), json.dumps(ready))
    parent = os.getppid()
    for stage in stages:
        go = _wait_for_go(stage, parent)
        if go is None:
            break  # the orchestrator is gone or gave up on us
        if go.get("skip"):
            continue
        environment.host = str(go["host"])
        set_link(Link.from_dict(go.get("link")))
        if isinstance(runner, MasterRunner):
            _run_master_stage(environment, runner, stage)
        else:
            _run_stage(environment, stage)
    runner.quit()


def _wait_for_go(stage: Stage, parent: int) -> dict[str, Any] | None:
    deadline = time.monotonic() + GO_TIMEOUT_S
    while time.monotonic() < deadline and os.getppid() == parent:
        go = read_go(stage.out_dir)
        if go is not None:
            return go
        gevent.sleep(GO_POLL_S)
    return None


def _run_stage(environment: Environment, stage: Stage) -> None:
    global _stage, _recorder, _schedule
    runner = environment.runner
    assert runner is not None
    if runner.state not in (STATE_INIT, STATE_STOPPED):
        runner.stop()
    recorder = Recorder(stage.warmup_s, stage.duration_s, count_connects=_counting_connects)
    recorder.log = [] if stage.log else None
    schedule = Schedule()
    if stage.load_model == "open" and stage.rate:
        seed = None if stage.seed < 0 else stage.seed
        schedule.configure(stage.rate, stage.arrivals, seed, stage.duration_s)
    _window_opened.clear()
    _stage, _recorder, _schedule = stage, recorder, schedule
    count = 1 if stage.load_model == "open" else stage.users
    runner.start(count, spawn_rate=count)  # from zero users: fires test_start, clears stats
    _window_opened.wait()
    assert recorder.window_start is not None and recorder.window_end is not None
    sleep_until(recorder.window_start)  # warm-up over: the machine's connects from here on
    recorder.active_opens(read_active_opens(), at_close=False)
    sleep_until(recorder.window_end)
    record = _close_window(runner, stage, recorder, schedule, stage.users)
    runner.stop()
    gc.collect()  # close the stopped users' sockets now, not in the next stage
    _write_stage(environment, stage, recorder, record)


def _run_master_stage(environment: Environment, runner: MasterRunner, stage: Stage) -> None:
    """One stage over every worker: send the stage, start the users, open every window at
    once, then merge the workers' records into the cell's files."""
    global _stage, _recorder, _schedule
    if runner.state not in (STATE_INIT, STATE_STOPPED):
        runner.stop()
    options = environment.parsed_options
    expected = int(getattr(options, "expect_workers", 1) or 1)
    deadline = time.monotonic() + WORKERS_WAIT_S
    while len(runner.clients.ready) < expected and time.monotonic() < deadline:
        gevent.sleep(GO_POLL_S)  # a worker stopped by the previous stage reports ready again
    workers = runner.worker_count
    recorder = Recorder(stage.warmup_s, stage.duration_s)  # the master's window only
    recorder.log = [] if stage.log else None
    _window_opened.clear()
    _records[stage.cell_id] = []
    _stage, _recorder, _schedule = stage, recorder, Schedule()
    message = {"stage": stage.to_dict(), "workers": workers, "link": current_link().to_dict()}
    runner.send_message(STAGE_MESSAGE, message)
    count = workers if stage.load_model == "open" else stage.users
    runner.start(count, spawn_rate=count)
    _window_opened.wait()
    assert recorder.window_end is not None
    sleep_until(recorder.window_end)
    deadline = time.monotonic() + RECORD_WAIT_S
    records = _records[stage.cell_id]
    while len(records) < workers and time.monotonic() < deadline:
        gevent.sleep(GO_POLL_S)
    record = _merged(recorder, list(records), workers)
    runner.stop()
    _write_stage(environment, stage, recorder, record)
    del _records[stage.cell_id]


def _merged(recorder: Recorder, records: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """The cell's record from the workers' (incomplete, saying why, when one is missing)."""
    recorder.written = True  # what the master recorded itself is nothing: never write it
    if not records:
        record = recorder.to_dict()
        record["complete"] = False
        record["error"] = f"none of the {workers} locust workers sent its record"
        return record
    if recorder.log is not None:
        recorder.log = merge_logs(r.pop("log", []) for r in records)
    record = merge_records(records)
    if len(records) < workers:
        sent = sorted(int(r.get(WORKER_KEY, {}).get("index", -1)) for r in records)
        record["complete"] = False
        record["error"] = (
            f"only {len(records)} of {workers} locust workers sent their record "
            f"(indexes {sent}); see the workers' output"
        )
    return record


def _on_record(environment: Environment, msg: Any, **_: Any) -> None:
    """Master: a worker's record of a stage."""
    records = _records.get(str(msg.data.get("cell_id")))
    if records is not None:  # a record of a stage given up on is dropped
        records.append(msg.data["record"])


def _start_worker(runner: WorkerRunner) -> None:
    """A worker: record what the master's stages ask for, and quit when the master is gone."""
    _count_connects()
    runner.register_message(STAGE_MESSAGE, _on_stage_message)
    runner.register_message(WINDOW_MESSAGE, _on_window_message)
    gevent.spawn(_watch_master, runner)


def _on_stage_message(environment: Environment, msg: Any, **_: Any) -> None:
    """Worker: a new stage starts. Closed load: locust gives this worker its share of the
    users; open load: this worker drives 1/N of the rate, with its own arrival seed."""
    global _stage, _recorder, _schedule
    stage = Stage(**msg.data["stage"])
    set_link(Link.from_dict(msg.data.get("link")))  # before this worker's users start
    workers = max(int(msg.data["workers"]), 1)
    runner = environment.runner
    index = max(int(getattr(runner, "worker_index", 0)), 0)
    recorder = Recorder(stage.warmup_s, stage.duration_s, count_connects=_counting_connects)
    recorder.log = [] if stage.log else None
    schedule = Schedule()
    if stage.load_model == "open" and stage.rate:
        seed = None if stage.seed < 0 else stage.seed * 1000 + index
        schedule.configure(stage.rate / workers, stage.arrivals, seed, stage.duration_s)
    _window_opened.clear()
    _stage, _recorder, _schedule = stage, recorder, schedule
    recorder.load_started_at = time.time()


def _on_window_message(environment: Environment, msg: Any, **_: Any) -> None:
    """Worker: every worker has spawned its users: the window opens now."""
    stage, recorder, schedule = _stage, _recorder, _schedule
    if stage is None or recorder is None or msg.data.get("cell_id") != stage.cell_id:
        return
    _open_window()
    gevent.spawn(_worker_window, environment, stage, recorder, schedule)


def _worker_window(
    environment: Environment, stage: Stage, recorder: Recorder, schedule: Schedule
) -> None:
    """Worker: run the window, then send the record, with this worker's own figures."""
    runner = environment.runner
    assert recorder.window_start is not None and recorder.window_end is not None
    sleep_until(recorder.window_start)
    recorder.active_opens(read_active_opens(), at_close=False)
    cpu_start, wall_start = _cpu_seconds(), time.time()
    sleep_until(recorder.window_end)
    cpu_used, wall = _cpu_seconds() - cpu_start, time.time() - wall_start
    users = int(getattr(runner, "target_user_count", 0) or 0)
    record = _close_window(runner, stage, recorder, schedule, users)
    if stage.load_model == "open":
        record["open"] = {**schedule.to_dict(), **recorder.open_figures()}
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    record[WORKER_KEY] = {
        "index": int(getattr(runner, "worker_index", -1)),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "users": 1 if stage.load_model == "open" else users,
        "rate": schedule.rate if stage.load_model == "open" else None,
        "cpu_pct": round(100 * cpu_used / wall, 1) if wall > 0 else None,
        "cpus": affinity,
    }
    if recorder.log is not None:
        record["log"] = [[t, us] for t, us in recorder.log]
    send_stats = getattr(runner, "_send_stats", None)
    if callable(send_stats):
        send_stats()  # locust's own figures reach the master before it stops the users
    assert runner is not None
    runner.send_message(RECORD_MESSAGE, {"cell_id": stage.cell_id, "record": record})


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _watch_master(runner: WorkerRunner) -> None:
    """Quit once the master has sent no heartbeat for MASTER_GONE_S (it sends one a second):
    locust's own limit is a minute."""
    while True:
        gevent.sleep(1.0)
        last = runner.last_heartbeat_timestamp
        if last is not None and time.time() - last > MASTER_GONE_S:
            logging.getLogger("gatebench").error(
                "no heartbeat from the locust master for %.0f s: quitting", MASTER_GONE_S
            )
            runner.quit()
            return


def sleep_until(
    deadline: float,
    sleep: Callable[[float], Any] = gevent.sleep,
    clock: Callable[[], float] = time.time,
) -> None:
    """Return once ``clock()`` has reached ``deadline``, never before.

    gevent times its sleeps by the loop's cached clock, so one ``gevent.sleep`` can wake a few
    milliseconds early: sleep again for whatever is left until the deadline has passed."""
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return
        sleep(remaining)


def _close_window(
    runner: Any, stage: Stage, recorder: Recorder, schedule: Schedule, user_count: int
) -> dict[str, Any]:
    """The window has closed: take the record before the users stop (they are still running,
    so in-flight tasks and held connections are counted as they are at the close).
    ``user_count``: the users this process runs (a worker: its share of the stage's)."""
    recorder.active_opens(read_active_opens(), at_close=True)
    schedule.close_window()
    requested = _requested_connections(runner, user_count)
    users = sys.modules.get(USERS_MODULE)
    if requested is not None and users is not None:
        recorder.close_connections(requested, users.held_by_protocol())
    record = recorder.to_dict()  # what the users do from now on is not counted
    recorder.written = True
    return record


def _requested_connections(runner: Any, users: int) -> dict[str, int] | None:
    """Long-lived connections the stage asked for, by protocol; None for an HTTP stage."""
    running = getattr(runner, "user_classes", None) or _loaded_classes()  # named on the CLI
    classes = [c for c in running if c.__name__ != OPEN_USER_CLASS]
    long_lived = [c for c in classes if getattr(c, "holds_connection", False)]
    if not long_lived:
        return None
    protocols = {str(getattr(c, "protocol", "")) for c in long_lived}
    if len(protocols) == 1 and len(long_lived) == len(classes):
        return {protocols.pop(): users}  # every user holds one connection
    # Mixed classes: what locust set out to run of each (target counts, not the survivors).
    counts: dict[str, int] = getattr(runner, "target_user_classes_count", None) or {}
    requested: dict[str, int] = {}
    for cls in long_lived:
        protocol = str(getattr(cls, "protocol", ""))
        requested[protocol] = requested.get(protocol, 0) + int(counts.get(cls.__name__, 0))
    return requested


def _write_stage(
    environment: Environment, stage: Stage, recorder: Recorder, record: dict[str, Any]
) -> None:
    recorder.written = True
    record["host"] = environment.host
    if stage.load_model == "open":
        if "open" not in record:  # a master's merged record has it already
            record["open"] = {**_schedule.to_dict(), **recorder.open_figures()}
    else:
        record.pop("histogram_uncorrected", None)  # same as "histogram" in closed load
    stats = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for name, method in LOCUST_CSV.items():
        with replacing(os.path.join(stage.out_dir, name)) as tmp, open(tmp, "w") as handle:
            getattr(stats, method)(csv.writer(handle))
    if recorder.log is not None:
        lines = "".join(f"{t:.6f},{us}\n" for t, us in recorder.log)
        atomic_write_text(os.path.join(stage.out_dir, schema.REQUEST_LOG), "t,latency_us\n" + lines)
    atomic_write_text(os.path.join(stage.out_dir, schema.LATENCY_FILE), json.dumps(record))
