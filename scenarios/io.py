"""I/O-bound: every request waits 50 ms on the server, as if for a database or an API.

The case ASGI is built for: a sync WSGI worker holds one waiting request at a time, an
event loop holds them all. Expect throughput to track min(users, slots) / 50 ms.
"""

from locust import FastHttpUser, constant, task

settings = {
    "service_time_ms": 50,
}


class IoUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def io(self) -> None:
        self.client.get("/io?ms=50", name="/io?ms=50")
