"""Connection scaling: up to 2,000 idle WebSockets, one message a second on each.

What it costs to hold many long-lived connections. A sync WSGI target holds only as many
connections as it has slots (workers x threads): the rest complete the TCP handshake but
wait in the accept queue, so their WebSocket handshake times out (failed "connect") and
``connections_established`` stops at the slot count. An ASGI target holds them all, each a
coroutine, and ``rss_per_connection_kb`` is what one costs in server memory. The server
needs a file descriptor per connection (the load generator raises its own limit).
"""

from locust import task

from harness.loadgen.users import WebSocketUser

settings = {
    "users": [100, 1000, 2000],
    "warmup": 4,  # users connect while they spawn; give the last ones time before the window
}


class IdleSocketUser(WebSocketUser):
    mode = "ticker"
    interval_ms = 1000

    @task
    def hold(self) -> None:
        self.hold_socket()
