"""Calibration: the cheapest request there is, as fast as the generator can send it.

Not a scenario (it lives in harness/, not scenarios/): the runner uses it to measure the
load generator's own ceiling before the cells. ``CalibrationUser`` is locust's
``FastHttpUser``; ``CalibrationH2User`` is the same request through the HTTP/2 user
(``harness.loadgen.h2``, httpx), whose client costs several times more CPU per request, so its
ceiling is measured on its own. The runner names the class to run on locust's command line.
"""

from locust import FastHttpUser, constant, task

from harness.loadgen.h2 import Http2User


class CalibrationUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")


class CalibrationH2User(Http2User):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
