"""Real database: every request runs one query that waits 50 ms inside PostgreSQL.

What /io?ms=50 simulates, through a real driver and connection pool: psycopg 3 with a pool
on the WSGI apps, psycopg's async pool on the ASGI app. A request holds a pooled connection
for its whole wait, so throughput tracks min(users, slots, pool) / 50 ms: an event loop with a
10-connection pool is capped at 10 / S like a 10-thread WSGI server.
"""

from locust import FastHttpUser, constant, task

settings = {
    "service_time_ms": 50,
    "needs": "database",
}


class DbUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def db(self) -> None:
        self.client.get("/db?ms=50", name="/db?ms=50")
