"""Server-sent events: every user holds one stream, the server pushes an event every 100 ms.

Each user opens ``GET /sse`` and keeps it open; the figures are the time to connect, the
time to the first event and, per event, the delivery latency (client receive time minus
the server's send time). A sync WSGI worker thread is held for the whole stream, so a
target serves at most as many streams as it has slots; an event loop holds them all.
"""

from locust import task

from harness.loadgen.users import SseUser

settings = {
    "users": [10, 100],
}


class SseStreamUser(SseUser):
    interval_ms = 100

    @task
    def stream(self) -> None:
        self.hold_stream()
