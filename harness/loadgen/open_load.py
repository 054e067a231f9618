"""Open-model load inside the locust process: requests start on a schedule, not on replies.

locust's users are closed-loop: a user waits for its response before the next request, so
a stalled server is sent less work and its stall hides (coordinated omission). Here one
scheduler greenlet launches each task of the scenario's user class at an intended time
(fixed spacing or Poisson arrivals at ``rate``/s), on a pool of user instances, without
waiting for earlier ones. Latency is measured from the *intended* start; the request's
own response time is kept as the uncorrected figure.

:class:`Schedule` counts what the driver did: arrivals launched (over the stage and with an
intended start inside the measurement window), dropped because too many requests were in
flight, still in flight when the window closed, and reached late by the driver loop itself
(``late_scheduler``). How late each task *actually* started is measured at its first request
(completion time minus response time, against the intended start) by the recorder
(``harness.loadgen.recorder.Recorder.record_lateness``); the "open" keys of ``latency.json``
are listed in ``harness.loadgen.recorder``. Imported by ``harness.loadgen.extension`` only;
never by the orchestrator.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust import User, constant, task
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser

from harness.loadgen.recorder import LATE_S

MAX_IN_FLIGHT = 20_000

log = logging.getLogger("gatebench.open_load")

# Intended start time of the task running in each greenlet, for the request listener.
intended_start: dict[Any, float] = {}


def check_user_class(user_class: type[User]) -> str | None:
    """Why this scenario user class cannot run open-model load, or None if it can."""
    problem = getattr(user_class, "open_problem", None)
    if isinstance(problem, str):  # the user says why itself (harness.loadgen.h2)
        return f"{user_class.__name__}: {problem}"
    if not user_class.tasks:
        return f"{user_class.__name__} has no tasks"
    for item in user_class.tasks:
        if isinstance(item, type):
            return (
                f"{user_class.__name__} uses a TaskSet ({item.__name__}); open-model load "
                "(--rates) runs plain @task methods only: use --users for this scenario"
            )
    return None


class Schedule:
    """The arrival schedule and what happened to it (one stage's)."""

    def __init__(self) -> None:
        self.rate = 0.0
        self.arrivals = "poisson"
        self.duration_s = 0.0  # the measurement window's length
        self.rng = random.Random()
        self.window: tuple[float, float] | None = None  # [start, end), epoch seconds
        self.launched = 0
        self.launched_in_window = 0
        self.late_scheduler = 0
        self.dropped = 0
        self.in_flight = 0
        self.in_flight_at_end: int | None = None  # set when the window closes

    def configure(
        self, rate: float, arrivals: str, seed: int | None, duration_s: float = 0.0
    ) -> None:
        self.rate = rate
        self.arrivals = arrivals
        self.rng = random.Random(seed)
        self.duration_s = duration_s

    def launch(self, due: float) -> None:
        """An arrival intended to start at ``due`` is launched."""
        self.launched += 1
        self.in_flight += 1
        if self.window is not None and self.window[0] <= due < self.window[1]:
            self.launched_in_window += 1

    def close_window(self) -> None:
        """The measurement window closes: note what is still in flight."""
        self.in_flight_at_end = self.in_flight

    def gap(self) -> float:
        if self.arrivals == "poisson":
            return self.rng.expovariate(self.rate)
        return 1.0 / self.rate

    def to_dict(self) -> dict[str, Any]:
        """The driver's keys of latency.json's "open"; the extension adds the lateness ones."""
        in_flight = self.in_flight if self.in_flight_at_end is None else self.in_flight_at_end
        return {
            "rate": self.rate,
            "arrivals": self.arrivals,
            "offered": self.rate * self.duration_s,
            "launched": self.launched,
            "launched_in_window": self.launched_in_window,
            "dropped": self.dropped,
            "in_flight_at_end": in_flight,
            "late_scheduler": self.late_scheduler,
        }


def make_open_user(
    current_schedule: Callable[[], Schedule],
    scenario_classes: Callable[[], list[type[User]]],
    on_start: Callable[[], None],
) -> type[User]:
    """The one locust user that drives the schedule (selected by name on locust's CLI).

    ``current_schedule`` gives the running stage's schedule: each stage of a sweep has its
    own, so requests still in flight from an earlier stage count against theirs."""

    class GatebenchOpenUser(User):
        wait_time = constant(0)

        @task
        def drive(self) -> None:
            schedule = current_schedule()
            if schedule.rate <= 0:
                raise StopUser  # closed-model run: this user is not for it
            classes = scenario_classes()
            weights = [max(getattr(c, "weight", 1), 0) or 1 for c in classes]
            pools: dict[type[User], list[User]] = {c: [] for c in classes}
            rng = schedule.rng
            on_start()
            due = time.time()
            while True:
                due += schedule.gap()
                delay = due - time.time()
                if delay > 0:
                    gevent.sleep(delay)
                elif -delay > LATE_S:
                    schedule.late_scheduler += 1  # the loop itself fell behind
                if schedule.in_flight >= MAX_IN_FLIGHT:
                    schedule.dropped += 1
                    continue
                chosen = rng.choices(classes, weights)[0]
                schedule.launch(due)
                gevent.spawn(self._one, schedule, chosen, pools[chosen], due)

        def _one(
            self, schedule: Schedule, user_class: type[User], pool: list[User], due: float
        ) -> None:
            intended_start[gevent.getcurrent()] = due
            user: User | None = None
            try:
                user = pool.pop() if pool else _new_user(user_class, self.environment)
                chosen_task: Callable[[User], None] = schedule.rng.choice(user_class.tasks)  # type: ignore[assignment]
                chosen_task(user)
            except (RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet, StopUser):
                pass
            except Exception:
                log.exception("task of %s failed", user_class.__name__)
            finally:
                intended_start.pop(gevent.getcurrent(), None)
                if user is not None:
                    pool.append(user)
                schedule.in_flight -= 1

    return GatebenchOpenUser


def _new_user(user_class: type[User], environment: Any) -> User:
    # locust sets the host only on the classes it runs; a sweep moves from target to target.
    user_class.host = environment.host
    user = user_class(environment)
    user.on_start()
    return user
