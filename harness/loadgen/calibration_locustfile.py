"""Calibration: the cheapest request there is, as fast as the generator can send it.

Not a scenario (it lives in harness/, not scenarios/): the runner uses it to measure the
load generator's own ceiling before the cells.
"""

from locust import FastHttpUser, constant, task


class CalibrationUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
