"""Real database, no wait: one indexed lookup of a random row of 10,000 per request.

The database answers in well under a millisecond, so this measures what a driver, a pool
and a framework cost per query: CPU on the server (and the database beside it), not waiting.
"""

import random

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 100],
    "needs": "database",
}


class DbLookupUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def lookup(self) -> None:
        item = random.randint(1, 10_000)
        self.client.get(f"/db/items?id={item}", name="/db/items?id=[1..10000]")
