"""Open-model load inside the locust process: requests start on a schedule, not on replies.

locust's users are closed-loop: a user waits for its response before the next request, so
a stalled server is sent less work and its stall hides (coordinated omission). Here one
scheduler greenlet launches each task of the scenario's user class at an intended time
(fixed spacing or Poisson arrivals at ``rate``/s), on a pool of user instances, without
waiting for earlier ones. Latency is measured from the *intended* start; the request's
own response time is kept as the uncorrected figure. Starts that happen late (the
generator fell behind) and arrivals dropped because too many requests were in flight are
counted. Imported by ``locust_ext`` only; never by the orchestrator.
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

LATE_S = 0.010  # a start more than 10 ms behind its schedule counts as late
MAX_IN_FLIGHT = 20_000

log = logging.getLogger("gatebench.open_load")

# Intended start time of the task running in each greenlet, for the request listener.
intended_start: dict[Any, float] = {}


def check_user_class(user_class: type[User]) -> str | None:
    """Why this scenario user class cannot run open-model load, or None if it can."""
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
    """The arrival schedule and what happened to it."""

    def __init__(self) -> None:
        self.rate = 0.0
        self.arrivals = "poisson"
        self.rng = random.Random()
        self.launched = 0
        self.late = 0
        self.dropped = 0
        self.max_lateness_s = 0.0
        self.in_flight = 0

    def configure(self, rate: float, arrivals: str, seed: int | None) -> None:
        self.rate = rate
        self.arrivals = arrivals
        self.rng = random.Random(seed)

    def gap(self) -> float:
        if self.arrivals == "poisson":
            return self.rng.expovariate(self.rate)
        return 1.0 / self.rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "arrivals": self.arrivals,
            "launched": self.launched,
            "late": self.late,
            "dropped": self.dropped,
            "max_lateness_ms": round(self.max_lateness_s * 1000, 3),
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
                    schedule.late += 1
                    schedule.max_lateness_s = max(schedule.max_lateness_s, -delay)
                if schedule.in_flight >= MAX_IN_FLIGHT:
                    schedule.dropped += 1
                    continue
                chosen = rng.choices(classes, weights)[0]
                schedule.launched += 1
                schedule.in_flight += 1
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
