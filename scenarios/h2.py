"""HTTP/2 against HTTP/1.1: the same I/O-bound request, several streams per connection.

Every user keeps 8 requests of ``/io?ms=50`` in flight. On an HTTP/2 target (``http`` "2")
they share ONE connection per user, multiplexed as h2 streams; on an HTTP/1.1 target each
needs a connection of its own, 8 per user. Does multiplexing change what the server delivers,
and what does it cost per request?

Fair by construction: both protocols are driven by the same client (``harness.loadgen.h2``,
httpx) with the same concurrency, users x streams requests in flight, so only the protocol
differs. ONE route, so the bound is exact: throughput tracks min(users x 8, slots) / 50 ms.
The HTTP/2 user runs closed load only (no ``--rates``).
"""

from locust import constant, task

from harness.loadgen.h2 import Http2User

settings = {
    "users": [10, 50],
    "streams": 8,
    "http": ["1.1", "2"],
    "service_time_ms": 50,
}


class IoStreamsUser(Http2User):
    wait_time = constant(0)

    @task
    def io(self) -> None:
        self.client.get("/io?ms=50", name="/io?ms=50")
