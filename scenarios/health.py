"""Overhead: the cheapest request there is (GET /health), as fast as users can send it.

What each stack costs per request when there is no work at all. Here the load generator
is often the limit, not the server: gatebench flags such cells as generator-bound, and
their throughput says more about locust than about the target.
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 64],
}


class HealthUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
