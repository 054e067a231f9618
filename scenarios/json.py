"""Serialisation: every request returns a 200-record JSON payload (about 17 kB).

Framework and server overhead with no waiting: what each stack costs per response when
the CPU, not the wait, is the limit.
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [1, 10, 50],
}


class JsonUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def json_payload(self) -> None:
        self.client.get("/json?items=200", name="/json?items=200")
