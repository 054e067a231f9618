"""Runs inside the locust process: a sweep of cells, each with exact latency recording.

Loaded next to a scenario file (``locust -f scenario.py,harness/loadgen/extension.py``) with
``--gatebench-plan FILE`` (``harness.loadgen.stages``); the orchestrator never imports this
module. One process runs every stage (cell) of the plan in order. For each stage it

- waits for the orchestrator's go file (the target's server is ready; it names the host),
  then starts the stage's users from zero (or, for open load, one driver user that launches
  requests on the arrival schedule, ``harness.loadgen.open_load``);
- opens the measurement window ``warmup_s`` after all users are spawned (open load: after
  the schedule starts) and closes it ``duration_s`` later: only requests that *complete*
  inside it are counted (``harness.loadgen.recorder``), so warm-up never reaches a figure;
- counts requests named ``connect`` (long-lived connections, ``harness.loadgen.users``) over
  the whole stage, warm-up included, since users connect while they spawn, and notes when
  the stage's load started (``load_started_at``, epoch seconds);
- stops the users, then writes the cell's ``locust_*.csv`` (locust's own figures for the
  stage) and ``latency.json`` last (``harness.schema.LATENCY_FILE``): its appearance tells
  the orchestrator the stage is done.

After the last stage locust quits. It also quits when its parent (the orchestrator) is gone
or no go file comes within ``GO_TIMEOUT_S``.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import time
from typing import Any

import gevent
from gevent.event import Event
from locust import User, events
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_STOPPED
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from harness import schema
from harness.fileio import atomic_write_text, replacing
from harness.loadgen import OPEN_USER_CLASS
from harness.loadgen.open_load import Schedule, check_user_class, intended_start, make_open_user
from harness.loadgen.recorder import HIGHEST_US, Recorder, failure_kind
from harness.loadgen.stages import Stage, read_go, read_plan

__all__ = ["HIGHEST_US", "Recorder", "failure_kind"]

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


def _current_schedule() -> Schedule:
    return _schedule


def _scenario_classes() -> list[type[User]]:
    """The scenario's user classes: every loaded user class but the open-load driver."""
    if _environment is None or not _environment.available_user_classes:
        return []
    classes: list[type[User]] = [
        cls  # type: ignore[misc]  # locust annotates the values as User, they are classes
        for name, cls in _environment.available_user_classes.items()
        if name != OPEN_USER_CLASS
    ]
    for cls in classes:
        problem = check_user_class(cls)
        if problem:
            raise RuntimeError(problem)
    return classes


def _open_window_now() -> None:
    if _recorder is not None and _recorder.window_start is None:
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
    options = environment.parsed_options
    if options is None or not options.gatebench_plan:
        return  # loaded without the harness (e.g. plain `locust -f`): record nothing
    gevent.spawn(_sweep, environment, read_plan(options.gatebench_plan))


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
    corrected = None if intended is None else (now - intended) * 1000
    kind = failure_kind(exception, response)
    if name == "connect" and not _recorder.written:
        if kind is None:
            _recorder.connects += 1
        else:
            _recorder.connect_failures += 1
    _recorder.record(now, f"{request_type} {name}", response_time, kind, corrected)


@events.test_start.add_listener
def _on_test_start(**_: Any) -> None:
    if _recorder is not None and _recorder.load_started_at is None:
        _recorder.load_started_at = time.time()


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_: Any) -> None:
    if _stage is None:
        _idle.set()  # locust's own headless start, with no users: the sweep may begin
        return
    # Closed load: warm-up starts once every user is spawned. Open load starts its window
    # when the schedule starts (see _open_window_now).
    if _recorder is not None and _recorder.window_start is None and _stage.load_model == "closed":
        _open_window()


@events.test_stop.add_listener
def _on_stop(environment: Environment, **_: Any) -> None:
    # locust stopping under a stage (SIGTERM, a crash): write what there is, marked incomplete.
    if _stage is not None and _recorder is not None and not _recorder.written:
        _write_stage(environment, _stage, _recorder, _recorder.to_dict())


def _open_window() -> None:
    assert _recorder is not None and _stage is not None
    _recorder.open_window(time.time())
    window = {"window_start": _recorder.window_start, "window_end": _recorder.window_end}
    # Tells the orchestrator when the window opens (it times an injected stall by it).
    atomic_write_text(os.path.join(_stage.out_dir, schema.WINDOW_FILE), json.dumps(window))
    _window_opened.set()


def _sweep(environment: Environment, stages: list[Stage]) -> None:
    runner = environment.runner
    assert runner is not None
    _idle.wait(timeout=30)
    parent = os.getppid()
    for stage in stages:
        go = _wait_for_go(stage, parent)
        if go is None:
            break  # the orchestrator is gone or gave up on us
        if go.get("skip"):
            continue
        environment.host = str(go["host"])
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
    recorder = Recorder(stage.warmup_s, stage.duration_s)
    recorder.log = [] if stage.log else None
    schedule = Schedule()
    if stage.load_model == "open" and stage.rate:
        schedule.configure(stage.rate, stage.arrivals, None if stage.seed < 0 else stage.seed)
    _window_opened.clear()
    _stage, _recorder, _schedule = stage, recorder, schedule
    count = 1 if stage.load_model == "open" else stage.users
    runner.start(count, spawn_rate=count)  # from zero users: fires test_start, clears stats
    _window_opened.wait()
    assert recorder.window_end is not None
    gevent.sleep(max(0.0, recorder.window_end - time.time()))
    record = recorder.to_dict()  # the window is closed: what the users do next is not counted
    recorder.written = True
    runner.stop()
    gc.collect()  # close the stopped users' sockets now, not in the next stage
    _write_stage(environment, stage, recorder, record)


def _write_stage(
    environment: Environment, stage: Stage, recorder: Recorder, record: dict[str, Any]
) -> None:
    recorder.written = True
    record["host"] = environment.host
    if stage.load_model == "open":
        record["open"] = _schedule.to_dict()
    else:
        del record["histogram_uncorrected"]  # same as "histogram" in closed load
    stats = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for name, method in LOCUST_CSV.items():
        with replacing(os.path.join(stage.out_dir, name)) as tmp, open(tmp, "w") as handle:
            getattr(stats, method)(csv.writer(handle))
    if recorder.log is not None:
        lines = "".join(f"{t:.6f},{us}\n" for t, us in recorder.log)
        atomic_write_text(os.path.join(stage.out_dir, schema.REQUEST_LOG), "t,latency_us\n" + lines)
    atomic_write_text(os.path.join(stage.out_dir, schema.LATENCY_FILE), json.dumps(record))
