"""Mixed API traffic: mostly waiting requests, some serialisation, a little CPU.

A day in the life of an API: 70% calls that wait 50 ms on a backend (with exponential
spread), 20% JSON listings, 5% JSON posts, 5% CPU work. The expected service time is the
weighted mean: 0.7 x 50 ms + 0.3 x about 1 ms = about 35 ms. The exponential waits make
short cells noisy: a few seconds hold only a few hundred waits per slot.
"""

from locust import FastHttpUser, constant, task

settings = {
    "service_time_ms": 35,
    "users": [10, 100, 200],
}


class MixedUser(FastHttpUser):
    wait_time = constant(0)

    @task(70)
    def io(self) -> None:
        self.client.get("/io?ms=50&dist=exp", name="/io?dist=exp")

    @task(20)
    def listing(self) -> None:
        self.client.get("/json?items=50", name="/json?items=50")

    @task(5)
    def echo(self) -> None:
        self.client.post("/echo", json={"user": 1, "items": [1, 2, 3]}, name="/echo")

    @task(5)
    def cpu(self) -> None:
        self.client.get("/cpu?work=1000", name="/cpu?work=1000")
