"""Real HTTP call: every request calls an upstream service that answers after 50 ms.

The target calls the harness's upstream service through a pooled HTTP client (httpx; the
async client on the ASGI app) and returns its answer. Like /io?ms=50, but the wait is a real
connection, request and response through the client's connection limit (the target's pool).
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 100, 200],
    "service_time_ms": 50,
    "needs": "upstream",
}


class UpstreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def upstream(self) -> None:
        self.client.get("/upstream?ms=50", name="/upstream?ms=50")
